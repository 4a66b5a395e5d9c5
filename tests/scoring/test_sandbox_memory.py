"""Attack: allocate without bound. The address-space limit turns it into status "memory"."""
from protege.scoring.sandbox import Limits, run_program

SMALL = Limits(memory_mb=256)


def test_one_huge_allocation():
    r = run_program("x = bytearray(4 * 1024 ** 3)", limits=SMALL, allow_code_execution=True)
    assert r.status == "memory"


def test_gradual_growth():
    program = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 ** 2))"
    r = run_program(program, limits=SMALL, timeout_s=10, allow_code_execution=True)
    assert r.status == "memory" and r.wall_s < 10


def test_under_the_limit_is_fine():
    r = run_program("x = bytearray(64 * 1024 ** 2)\nprint(len(x))", limits=SMALL, allow_code_execution=True)
    assert r.status == "passed"

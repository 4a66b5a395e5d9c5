"""Attack: flood stdout. Output is cut at the cap, the run is killed, the host never buffers the flood."""
import resource

from protege.scoring.sandbox import Limits, run_program


def test_endless_output_is_truncated():
    r = run_program("while True:\n    print('x' * 1000)", limits=Limits(output_bytes=64 * 1024),
                    allow_code_execution=True)
    assert r.status == "output_limit"
    assert len(r.stdout) <= 64 * 1024 and r.stdout.startswith("x" * 1000)


def test_one_giant_write_does_not_reach_host_memory():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    program = "import sys\nsys.stdout.write('y' * (300 * 1024 ** 2))"  # 300 MiB in one call
    r = run_program(program, limits=Limits(output_bytes=1 << 20, memory_mb=1024), timeout_s=10,
                    allow_code_execution=True)
    assert r.status == "output_limit" and len(r.stdout) == 1 << 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def test_stderr_counts_toward_the_cap():
    r = run_program("import sys\nwhile True:\n    sys.stderr.write('e' * 4096)", limits=Limits(output_bytes=10_000),
                    allow_code_execution=True)
    assert r.status == "output_limit" and len(r.stderr) <= 10_000

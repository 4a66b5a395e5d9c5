"""Attack: run forever. The wall clock kills the program's whole process group; CPU limits back it up."""
import time

from protege.scoring.sandbox import Limits, run_program


def test_infinite_loop_times_out_quickly():
    start = time.monotonic()
    r = run_program("while True:\n    pass", timeout_s=1.0, allow_code_execution=True)
    assert r.status == "timeout"
    assert r.returncode == -9  # SIGKILL from the host, not a polite exit
    assert 1.0 <= r.wall_s < 3.0 and time.monotonic() - start < 5.0


def test_sleeping_program_times_out_too():
    # No CPU used: only the wall clock can stop it.
    r = run_program("import time\ntime.sleep(60)", timeout_s=0.5, allow_code_execution=True)
    assert r.status == "timeout" and "wall-clock" in " ".join(r.notes)


def test_cpu_limit_stops_a_spinner_even_with_a_generous_wall_clock():
    r = run_program("while True:\n    pass", timeout_s=10.0, limits=Limits(cpu_s=1), allow_code_execution=True)
    assert r.status == "timeout" and r.wall_s < 5.0  # SIGXCPU after 1 s of CPU

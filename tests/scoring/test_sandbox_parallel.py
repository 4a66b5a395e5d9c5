"""run_many keeps the order of its inputs however the workers finish."""
from protege.scoring.sandbox import run_many


def test_results_come_back_in_input_order():
    # Earlier programs sleep longer, so completion order is the reverse of input order.
    programs = [f"import time\ntime.sleep({(8 - i) * 0.03})\nprint({i})" for i in range(8)]
    results = run_many(programs, workers=4, allow_code_execution=True)
    assert [r.stdout.strip() for r in results] == [str(i) for i in range(8)]
    assert run_many([], allow_code_execution=True) == []

"""status/<key>.json keeps a job's earlier runs: a rerun that only reuses stages does not erase the first run's times."""
import json

from protege.benchmark.runner import _record


def test_a_rerun_keeps_the_earlier_runs_start_end_and_outcome(tmp_path):
    first = {"key": "k", "kind": "data", "label": "t | teacher m", "started": 100.0, "ended": 3700.0, "ok": True}
    _record(tmp_path, first)
    assert json.loads((tmp_path / "k.json").read_text()) == first  # the first run: nothing earlier
    _record(tmp_path, {**first, "started": 5000.0, "ended": 5006.0, "ok": False, "error": "boom"})
    _record(tmp_path, {**first, "started": 6000.0, "ended": 6030.0})
    last = json.loads((tmp_path / "k.json").read_text())
    assert (last["started"], last["ended"], last["ok"]) == (6000.0, 6030.0, True) and "error" not in last
    assert last["earlier"] == [{"started": 100.0, "ended": 3700.0, "ok": True},
                               {"started": 5000.0, "ended": 5006.0, "ok": False}]

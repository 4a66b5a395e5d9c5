"""lab/experiments/prune_depth.py: each depth of a prune scored on the validation split, and the rule that picks one."""
import json

from protege.lab.experiments.prune_depth import chosen, depth_rows, table
from protege.evaluate.test_access import LOG_NAME
from tiny import add_tiny_validation, write_tiny_task


def test_rows_for_the_unpruned_model_and_each_depth_on_validation_only(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    task = add_tiny_validation(write_tiny_task(tmp_path / "task"), range(100, 104))
    rows = depth_rows(f"hf:{tiny_model_dir}", str(task), [1], runs_dir=str(tmp_path / "runs"), progress=False)
    assert [r["keep"] for r in rows] == [None, 1]
    assert rows[0]["model"] == f"hf:{tiny_model_dir}" and rows[1]["model"].endswith("-keep1")
    assert all(r["items"] == 4 for r in rows) and rows[1]["layers_before"] == 2
    assert rows[1]["params"] < rows[1]["params_before"]
    for r in rows:  # every row is the validation evaluation it names
        results = json.loads(open(f"{r['path']}/results.json").read())
        assert results["split"] == "validation" and results["summary"][r["metric"]] == r["score"]
    assert not list((tmp_path / "runs").rglob(LOG_NAME))
    text = table(rows, "cmd")
    assert "| all 2 | " in text and "| 1 | " in text and "4 validation items" in text


def _row(keep, lo):
    return {"keep": keep, "ci": [lo, lo + 0.1], "model": f"m{keep}"}


def test_the_rule_picks_the_fewest_layers_whose_ci_lies_above_zero():
    rows = [_row(None, 0.3), _row(12, 0.0), _row(14, 0.02), _row(16, 0.1)]
    assert chosen(rows)["keep"] == 14
    assert chosen([_row(None, 0.3), _row(12, 0.0)]) is None  # the unpruned model is never the pick

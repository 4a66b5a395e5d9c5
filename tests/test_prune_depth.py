"""lab/experiments/prune_depth.py: each depth of a prune scored on the validation split, and the rule that picks one."""
import json

import pytest

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


def test_the_choice_is_recorded_and_read_back_as_a_student(tmp_path, tiny_model_dir, monkeypatch):
    from protege.errors import ConfigError
    from protege.lab.experiments.prune_depth import chosen_student, main

    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    task = add_tiny_validation(write_tiny_task(tmp_path / "task"), range(100, 104))
    doc = tmp_path / "depth.md"
    with pytest.raises(ConfigError, match="no prune-depth record"):
        chosen_student(doc.with_suffix(".json"))
    main(["--from", f"hf:{tiny_model_dir}", "--task", str(task), "--keep", "1", "--runs-dir", str(tmp_path / "runs"),
          "--out", str(doc)])
    record = json.loads(doc.with_suffix(".json").read_text())
    assert [r["keep"] for r in record["rows"]] == [None, 1] and "| all 2 |" in doc.read_text()
    # whatever the random tiny model scored, a choice set by hand is read back, then none
    record["chosen"] = {"keep": 1, "model": record["rows"][1]["model"]}
    doc.with_suffix(".json").write_text(json.dumps(record))
    assert chosen_student(doc.with_suffix(".json")) == record["rows"][1]["model"]
    record["chosen"] = None
    doc.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="no depth met the rule"):
        chosen_student(doc.with_suffix(".json"))

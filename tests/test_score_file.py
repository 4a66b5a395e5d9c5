"""`protege score` scores predictions from any tool, and refuses a file that does not cover the test set."""
import json

from typer.testing import CliRunner

from protege.cli import app


def write_preds(path, preds):
    path.write_text("".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in preds))


def test_score_counts_correct_predictions(tiny_task, tmp_path):
    # tiny task: item i is "yes" when i is even; predict "yes" everywhere -> 6 of 12 right
    preds = tmp_path / "preds.jsonl"
    write_preds(preds, [(f"test-{i}", "yes") for i in range(12)])
    result = CliRunner().invoke(app, ["score", str(preds), "--task", str(tiny_task)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] == 0.5


def test_score_refuses_missing_and_unknown_ids(tiny_task, tmp_path):
    preds = tmp_path / "preds.jsonl"
    write_preds(preds, [(f"test-{i}", "no") for i in range(11)] + [("test-99", "no")])
    result = CliRunner().invoke(app, ["score", str(preds), "--task", str(tiny_task)])
    assert result.exit_code == 2
    assert "1 test ids have no prediction, e.g. ['test-11']" in result.output
    assert "1 ids are not in the test set of tiny, e.g. ['test-99']" in result.output

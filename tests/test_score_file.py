"""`protege score` scores predictions from any tool, and refuses a file that does not cover the test set."""
import json

import pytest
from markers import requires_data
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


@requires_data
def test_score_squad2_gold_and_empty_predictions(tmp_path):
    from protege.tasks.spec import load_task

    test = load_task("squad2").test_examples()
    gold, empty = tmp_path / "gold.jsonl", tmp_path / "empty.jsonl"
    write_preds(gold, [(t.id, t.answers[0] if t.answers else "") for t in test])
    write_preds(empty, [(t.id, "") for t in test])
    runner = CliRunner()
    scored = json.loads(runner.invoke(app, ["score", str(gold), "--task", "squad2"]).output)
    assert scored["exact_match"] == 1.0 and scored["f1"] == 1.0
    scored = json.loads(runner.invoke(app, ["score", str(empty), "--task", "squad2"]).output)
    no_answer = sum(1 for t in test if not t.answers) / len(test)
    assert scored["exact_match"] == pytest.approx(no_answer) and scored["no_answer_exact_match"] == 1.0
    assert scored["has_answer_f1"] == 0.0
    log = [json.loads(l) for l in (tmp_path / "test-access.jsonl").open()]
    assert [r["purpose"] for r in log] == ["final evaluation"] * 2


@requires_data
def test_score_code_needs_opt_in_and_runs_canonical_solutions(tmp_path):
    from protege.tasks.spec import load_task

    test = load_task("humaneval").test_examples()
    preds = tmp_path / "preds.jsonl"
    write_preds(preds, [(t.id, f"```python\n{t.reference}\n```") for t in test])
    refused = CliRunner().invoke(app, ["score", str(preds), "--task", "humaneval"])
    assert refused.exit_code == 2 and "--allow-code-execution" in refused.output
    ok = CliRunner().invoke(app, ["score", str(preds), "--task", "humaneval", "--allow-code-execution"])
    assert json.loads(ok.output)["pass@1"] == 1.0


@requires_data
def test_score_extraction_accepts_objects_and_pairs(tmp_path):
    from protege.tasks.spec import load_task

    test = load_task("restaurant8k").test_examples()
    preds = tmp_path / "preds.jsonl"
    lines = [(t.id, dict(t.spans) if i % 2 else [list(p) for p in t.spans]) for i, t in enumerate(test)]
    write_preds(preds, lines)
    scored = json.loads(CliRunner().invoke(app, ["score", str(preds), "--task", "restaurant8k"]).output)
    assert scored["slot_f1"] == 1.0


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file; give the JSONL file of predictions"),
    ("latin1", "is not UTF-8 text"),
    ("duplicate", "line 13: id 'test-0' already has a prediction on line 1"),
    ("not_a_label", "line 3 (id test-2): prediction 'maybe' is not one of the labels ['yes', 'no']"),
])
def test_bad_prediction_files_name_the_line_and_the_fix(tiny_task, tmp_path, case, expected):
    preds = tmp_path / "preds.jsonl"
    rows = [(f"test-{i}", "yes") for i in range(12)]
    if case == "latin1":
        preds.write_bytes('{"id": "test-0", "prediction": "caf\xe9"}\n'.encode("latin-1"))
    elif case == "duplicate":
        write_preds(preds, rows + [("test-0", "no")])
    elif case == "not_a_label":
        write_preds(preds, rows[:2] + [("test-2", "maybe")] + rows[3:])
    result = CliRunner().invoke(app, ["score", str(preds), "--task", str(tiny_task)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert expected in " ".join(result.output.split()), result.output


def test_a_qa_prediction_that_is_a_number_is_read_as_its_text(tmp_path):
    from protege.tasks.kinds import qa

    from test_kinds import spec_of

    spec = spec_of("qa")
    assert qa.read_prediction(spec, 1969) == "1969" and qa.read_prediction(spec, None) == ""
    with pytest.raises(ValueError, match="not an answer string"):
        qa.read_prediction(spec, ["a", "b"])


@requires_data
def test_predictions_keyed_by_the_data_sets_own_ids_score_as_they_are(tmp_path):
    """HumanEval task ids (as EvalPlus writes them) and MBPP task ids, instead of test-<row>."""
    from protege.tasks.spec import load_task

    spec = load_task("mbpp")
    items = spec.test_examples()
    preds = tmp_path / "preds.jsonl"
    # MBPP's test items are task ids 11-510 in file rows 10-509: the reference solution of each
    write_preds(preds, [(int(it.id.split("-")[1]) + 1, it.reference) for it in items])
    result = CliRunner().invoke(app, ["score", str(preds), "--task", "mbpp", "--allow-code-execution"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pass@1"] > 0.95


def test_a_folder_where_the_read_cannot_be_logged_is_a_clear_error(tiny_task, tmp_path, monkeypatch):
    """Root writes anywhere, so the read-only folder is simulated where the log is written."""
    from protege.store import JsonlLog

    def refuse(self, records):
        raise PermissionError(13, "Permission denied", str(self.path))

    preds = tmp_path / "preds.jsonl"
    write_preds(preds, [(f"test-{i}", "yes") for i in range(12)])
    monkeypatch.setattr(JsonlLog, "append", refuse)
    result = CliRunner().invoke(app, ["score", str(preds), "--task", str(tiny_task)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Permission denied" in result.output and "a folder you can write" in " ".join(result.output.split())

"""The test set is read only for final evaluation or decontamination, every read is logged, and choosing
with test items fails. Run: `.venv/bin/python -m pytest -q tests/test_test_access.py` (about a second)."""
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from protege.errors import ConfigError
from protege.evaluate.test_access import (LOG_NAME, TestSetAccessError, TestSetSelectionError, count_reads,
                                          ensure_not_test, read_log, read_test_set)
from protege.store import StageDir, content_key
from protege.tasks.spec import Example, load_task
from tiny import write_tiny_task

VALIDATION = "validation: {path: %s, format: jsonl, fields: {text: question, label: answer}}\n"


def with_validation(task_path: Path, validation_path: str) -> Path:
    task_path.write_text(task_path.read_text() + VALIDATION % validation_path)
    return task_path


def test_final_evaluation_read_logs_one_line_with_who_when_which_stage(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    log = tmp_path / "run" / LOG_NAME
    stage = StageDir(tmp_path / "run", "tiny", "eval", "abc123")
    items = read_test_set(spec, log, stage, "final evaluation", who="fine-tuned")
    assert [e.id for e in items] == [e.id for e in spec.test_examples()] and len(items) == 12
    (record,) = read_log(log)
    assert record["who"] == "fine-tuned" and record["stage"] == "eval-abc123"
    assert record["purpose"] == "final evaluation" and record["task"] == "tiny" and record["items"] == 12
    assert record["ids_hash"] == content_key([f"test-{i}" for i in range(12)], 16)
    assert dt.datetime.fromisoformat(record["when"]).tzinfo is not None

    read_test_set(spec, log, "eval-abc123", "final evaluation", limit=5)
    second = read_log(log)[1]
    assert second["items"] == 5 and second["ids_hash"] != record["ids_hash"]
    assert "@" in second["who"] and "pid" in second["who"]  # default: user@host/pid


def test_log_counts_exactly_the_reads_made(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    log = tmp_path / LOG_NAME
    assert count_reads(log) == 0 and read_log(log) == []
    rows = ["baseline (zero-shot)", "baseline (few-shot)", "fine-tuned", "teacher (few-shot)"]
    for row in rows:
        read_test_set(spec, log, "eval-k", "final evaluation", who=row)
    read_test_set(spec, log, "curate-k", "decontamination")
    assert count_reads(log) == 5
    assert count_reads(log, purpose="final evaluation") == 4
    assert count_reads(log, purpose="decontamination") == 1
    assert [r["who"] for r in read_log(log)][:4] == rows
    assert len(log.read_text().splitlines()) == 5


@pytest.mark.parametrize("purpose", ["few-shot selection", "checkpoint selection", "early stopping", "Final evaluation"])
def test_reading_test_set_to_choose_fails_and_logs_nothing(tiny_task, tmp_path, purpose):
    spec = load_task(str(tiny_task))
    log = tmp_path / LOG_NAME
    with pytest.raises(TestSetAccessError) as err:
        read_test_set(spec, log, "train-k", purpose)
    assert isinstance(err.value, ConfigError)  # the CLI turns it into a clean exit 2
    message = str(err.value)
    assert "train-k" in message and repr(purpose) in message and "validation:" in message
    assert not log.exists() and count_reads(log) == 0


def test_choosing_with_test_items_by_id_fails_naming_choice_and_fix(tiny_task):
    spec = load_task(str(tiny_task))
    shots = spec.seed_examples()[:2] + spec.test_examples()[3:5]
    with pytest.raises(TestSetSelectionError) as err:
        ensure_not_test(spec, shots, "few-shot examples")
    message = str(err.value)
    assert "few-shot examples: 2 of the items" in message and "test-3, test-4" in message
    assert "choose with the validation split or seeds" in message
    assert err.value.choice == "few-shot examples" and err.value.ids == ["test-3", "test-4"]
    with pytest.raises(TestSetSelectionError):  # dict rows (e.g. checkpoint-selection data) too
        ensure_not_test(spec, [{"id": "test-0", "text": "anything"}], "checkpoint selection")


def test_long_id_lists_are_shortened(tiny_task):
    spec = load_task(str(tiny_task))
    with pytest.raises(TestSetSelectionError, match=r"12 of the items .*test-4, \.\.\. \(7 more\)"):
        ensure_not_test(spec, spec.test_examples(), "checkpoint selection")


@pytest.mark.parametrize("validation_path", ["validation.jsonl", "./test.jsonl"])
def test_validation_that_is_the_test_file_is_refused_at_load(tiny_task, validation_path):
    # A copy of the test file, or the test file under another spelling: the loader sees its rows repeat test
    # items and refuses the split, naming it and the fix.
    shutil.copy(tiny_task.parent / "test.jsonl", tiny_task.parent / "validation.jsonl")
    spec = load_task(str(with_validation(tiny_task, validation_path)))
    with pytest.raises(ConfigError, match="validation: 12 of its 12 rows repeat test items"):
        spec.validation_examples()


def test_guard_catches_test_items_that_reach_a_choice_another_way(tiny_task):
    # Examples built in code (not through the loader) with the test set's texts under other ids.
    spec = load_task(str(tiny_task))
    copies = [e.model_copy(update={"id": f"validation-{i}"}) for i, e in enumerate(spec.test_examples())]
    with pytest.raises(TestSetSelectionError, match="teacher gate: 12 of the items .*same text as a test item"):
        ensure_not_test(spec, copies, "teacher gate")


def test_content_match_ignores_case_punctuation_and_spacing(tiny_task):
    spec = load_task(str(tiny_task))
    near = Example(id="gen-7", text="  IS 3 an even number", label="no")
    with pytest.raises(TestSetSelectionError, match="gen-7"):
        ensure_not_test(spec, [near], "curation threshold")
    other_context = Example(id="gen-8", text="Is 3 an even number ?", context="a passage", label="no")
    assert ensure_not_test(spec, [other_context], "curation threshold") == [other_context]


def test_seeds_and_a_real_validation_split_pass(tiny_task):
    rows = [{"question": f"Is {100 + i} an even number ?", "answer": "yes" if i % 2 == 0 else "no"} for i in range(6)]
    (tiny_task.parent / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = load_task(str(with_validation(tiny_task, "validation.jsonl")))
    seeds, validation = spec.seed_examples(), spec.validation_examples()
    assert len(validation) == 6
    assert ensure_not_test(spec, seeds, "few-shot examples") == seeds
    assert ensure_not_test(spec, (e for e in validation), "checkpoint selection") == validation


def test_fingerprints_follow_an_edited_test_file(tiny_task):
    spec = load_task(str(tiny_task))
    item = Example(id="validation-0", text="Is 40 an even number ?", label="yes")
    assert ensure_not_test(spec, [item], "early stopping") == [item]  # 12 test items: 0..11
    write_tiny_task(tiny_task.parent, n_test=50)  # now the test set holds item 40
    with pytest.raises(TestSetSelectionError):
        ensure_not_test(spec, [item], "early stopping")


def test_a_stage_choosing_shots_from_the_test_set_fails(tmp_path, tiny_model_dir):
    """Inline seeds that are test questions: the eval stage's few-shot choice refuses."""
    from protege.config import load_config
    from protege.pipeline import Pipeline
    from tiny import write_tiny_config, write_tiny_task

    task = write_tiny_task(tmp_path / "leaky")
    text = task.read_text().replace("'Is 2 even ?'", "'Is 2 an even number ?'").replace("'Is 3 even ?'", "'is 3 an even number'")
    task.write_text(text)
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, task))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    with pytest.raises(TestSetSelectionError, match="few-shot examples: 2 of the items .* from the test set"):
        pipe.run("eval")


def test_experiment_docs_count_each_eval_stages_reads_once(tiny_task, tmp_path):
    """compare.test_reads: the sentence the experiment tables end with counts every read logged by the eval
    stages the results point at, once per stage however many results share it, and none of a pending arm."""
    from protege.lab.experiments.compare import test_reads

    spec = load_task(str(tiny_task))
    a, b = tmp_path / "eval-a", tmp_path / "eval-b"
    for stage, rows in ((a, ["zero-shot", "fine-tuned", "fine-tuned"]), (b, ["fine-tuned"])):
        stage.mkdir()
        for r in rows:
            read_test_set(spec, stage / LOG_NAME, stage.name, "final evaluation", who=r)
    read_test_set(spec, b / LOG_NAME, b.name, "decontamination")
    results = [{"eval_dir": str(a)}, {"eval_dir": str(a)}, {"eval_dir": str(b)},
               {"eval_dir": str(tmp_path / "eval-c"), "pending": True}]
    line = test_reads(results)
    assert "these 2 eval stages: 5 (1 decontamination, 4 final evaluation;" in line, line
    assert spec.name in line
    assert "0 (none; no task)" in test_reads([{"eval_dir": str(tmp_path / "eval-never-read")}])

"""`protege eval --model M --task T --split validation`: a model scored on the task's validation split, to choose
with (a model, a depth), without reading the test set."""
import json

import pytest
from typer.testing import CliRunner

from protege.cli import app
from protege.errors import ConfigError
from protege.evaluate.model_eval import evaluate_model
from protege.evaluate.test_access import LOG_NAME
from protege.tasks.spec import load_task
from tiny import add_tiny_validation, write_tiny_task

QUIET = {"progress": False, "echo": lambda m: None, "resamples": 50}


def test_validation_split_scores_validation_items_and_reads_no_test_item(tmp_path, tiny_model_dir):
    task = add_tiny_validation(write_tiny_task(tmp_path / "task"), range(100, 105))
    res = evaluate_model(f"hf:{tiny_model_dir}", load_task(str(task)), split="validation", runs_dir=tmp_path / "runs",
                         **QUIET)
    assert res["validation_items"] == 5 and res["split"] == "validation" and "test_items" not in res
    records = [json.loads(l) for l in open(f"{res['path']}/samples.jsonl")]
    assert [r["id"] for r in records] == [f"validation-{i}" for i in range(5)]
    assert not list((tmp_path / "runs").rglob(LOG_NAME))  # no test read logged anywhere: none happened
    # the test evaluation of the same model is another folder, and its setting has no split (the key it had)
    test = evaluate_model(f"hf:{tiny_model_dir}", load_task(str(task)), runs_dir=tmp_path / "runs", **QUIET)
    assert test["path"] != res["path"] and test["test_items"] == 12 and "split" not in test
    assert (tmp_path / "runs" / "tiny" / test["path"].split("/")[-1] / LOG_NAME).exists()


def test_a_validation_row_that_repeats_a_test_item_is_not_scored(tmp_path, tiny_model_dir):
    """The loader drops a validation row whose question is a test item's (tasks/loaders.py), so it is never scored."""
    copied = [{"question": "Is 4 an even number ?", "answer": "yes"}]  # test item 4, word for word
    task = add_tiny_validation(write_tiny_task(tmp_path / "task"), [100, 101], copied)
    res = evaluate_model(f"hf:{tiny_model_dir}", load_task(str(task)), split="validation", runs_dir=tmp_path / "runs",
                         **QUIET)
    scored = [json.loads(l)["id"] for l in open(f"{res['path']}/samples.jsonl")]
    assert res["validation_items"] == 2 and scored == ["validation-0", "validation-1"]


def test_a_task_without_validation_split_or_an_unknown_split_is_a_clear_error(tmp_path, tiny_model_dir):
    task = load_task(str(write_tiny_task(tmp_path / "task")))
    with pytest.raises(ConfigError, match="declares no validation split: add `validation:`"):
        evaluate_model(f"hf:{tiny_model_dir}", task, split="validation", runs_dir=tmp_path / "runs", **QUIET)
    with pytest.raises(ConfigError, match="unknown split 'train'"):
        evaluate_model(f"hf:{tiny_model_dir}", task, split="train", runs_dir=tmp_path / "runs", **QUIET)


def test_cli_split_option(tmp_path, tiny_model_dir):
    task = add_tiny_validation(write_tiny_task(tmp_path / "task"), range(100, 103))
    out = CliRunner().invoke(app, ["eval", "--model", f"hf:{tiny_model_dir}", "--task", str(task), "--split",
                                   "validation", "--runs-dir", str(tmp_path / "runs")])
    assert out.exit_code == 0, out.output
    assert "on 3 validation items" in out.output

"""Forgetting suite: before/after scores on a general task, and a gate that fails the run and the command."""
import json

import pytest
from typer.testing import CliRunner

from protege.cli import app
from protege.config import load_config
from protege.errors import ConfigError
from protege.evaluate.forgetting import measure
from protege.pipeline import Pipeline
from protege.store import JsonlLog, atomic_write_text
from protege.tasks.spec import load_task
from tiny import write_tiny_config, write_tiny_qa_task


def qa_records(rights):
    return [{"id": f"test-{i}", "exact_match": float(r), "f1": float(r), "has_answer": True, "seconds": 0.0,
             "tokens_in": 1, "tokens_out": 1} for i, r in enumerate(rights)]


def test_measure_computes_drop_and_gate(tmp_path):
    task = load_task(str(write_tiny_qa_task(tmp_path / "qa")))
    before, after = qa_records([1, 1, 1, 1, 0, 0]), qa_records([1, 0, 0, 0, 0, 0])  # F1 66.7 -> 16.7
    entry = measure(task, before, after, {"tinyqa": 40}, resamples=50)
    assert entry["metric"] == "f1"  # the qa default
    assert entry["drop"] == pytest.approx(50.0)
    assert entry["passed"] is False and entry["only_before_right"] == 3 and entry["only_after_right"] == 0
    assert measure(task, before, after, {"tinyqa.f1": 60}, resamples=50)["passed"] is True
    assert measure(task, before, after, {}, resamples=50)["passed"] is None  # no gate: reported only


def test_gate_for_a_task_outside_the_suite_is_refused_up_front(tmp_path, tiny_model_dir, tiny_task):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    with pytest.raises(ConfigError, match="gsm8k: not a task of the suite"):
        Pipeline(load_config(path, ["eval.forgetting.max_drop={gsm8k: 5}"]), progress=False)


def test_failed_gate_marks_run_failed_and_exits_non_zero(tmp_path, tiny_model_dir, tiny_task):
    # A negative max_drop demands an improvement; the tiny student cannot deliver one, so the gate fails.
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    result = CliRunner().invoke(app, ["run", str(path), "eval.forgetting.max_drop={tinyqa: -1}"])
    assert result.exit_code == 3, result.output
    assert "RUN FAILED: forgetting gate exceeded: tinyqa f1 dropped" in result.output
    results = json.loads(next((tmp_path / "runs" / "tiny").glob("eval-*/results.json")).read_text())
    entry = results["forgetting"]["entries"][0]
    assert entry["task"] == "tinyqa" and entry["items"] == 6 and entry["passed"] is False
    report = next((tmp_path / "runs" / "tiny").glob("report-*/report.md")).read_text()
    assert "## Forgetting" in report and "RUN FAILED" in report
    # the same run with a gate it meets passes, reusing every finished stage but eval and report
    ok = CliRunner().invoke(app, ["run", str(path), "eval.forgetting.max_drop={tinyqa: 100}"])
    assert ok.exit_code == 0, ok.output


def test_untuned_before_records_are_computed_once_and_copied_into_each_stage(tmp_path, tiny_model_dir, tiny_task):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    first = Pipeline(load_config(path), progress=False)
    first.run("eval")
    (row,) = (tmp_path / "runs" / "tinyqa").glob("eval-row-*")  # the suite task's own folder, one shared row
    shared = JsonlLog(row / "samples.jsonl")
    records = shared.read()
    assert len(records) == 6 and (row / "memory.json").exists()
    assert JsonlLog(first.stages["eval"] / "forgetting" / "tinyqa-before.jsonl").read() == records  # its own copy
    # A marker planted in the shared row: a second stage of the same student that recomputed would not carry it.
    atomic_write_text(shared.path, "".join(json.dumps({**r, "marker": "shared"}) + "\n" for r in records))
    second = Pipeline(load_config(path, ["train.lr=0.02"]), progress=False)
    second.run("eval")
    assert second.stages["eval"].path != first.stages["eval"].path
    copy = JsonlLog(second.stages["eval"] / "forgetting" / "tinyqa-before.jsonl").read()
    assert [r["id"] for r in copy] == [r["id"] for r in records] and all(r["marker"] == "shared" for r in copy)
    entry = json.loads((second.stages["eval"] / "results.json").read_text())["forgetting"]["entries"][0]
    assert entry["items"] == 6 and entry["task"] == "tinyqa"


def test_a_stage_that_began_its_own_before_log_finishes_it_there(tmp_path, tiny_model_dir, tiny_task):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    pipe = Pipeline(load_config(path), progress=False)
    pipe.run("train")
    own = pipe.stages["eval"] / "forgetting" / "tinyqa-before.jsonl"
    started = {"id": "test-0", "exact_match": 1.0, "f1": 1.0, "has_answer": True, "seconds": 0.0, "tokens_in": 1,
               "tokens_out": 1, "marker": "own"}  # what a stage killed mid-way under the old code left
    atomic_write_text(own, json.dumps(started) + "\n")
    pipe.run("eval")
    records = JsonlLog(own).read()
    assert len(records) == 6 and records[0]["marker"] == "own" and "marker" not in records[1]
    assert not list((tmp_path / "runs" / "tinyqa").glob("eval-row-*"))  # nothing shared was computed


def test_a_suite_task_left_out_by_a_setting_is_said_before_any_stage_runs(tmp_path, tiny_model_dir, tiny_task):
    from test_answer_modes import _code_task

    from protege.config import EvalConfig
    from protege.evaluate.forgetting import check_suite, suite_notices

    code = str(_code_task(tmp_path / "code"))
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"forgetting": {"tasks": [code], "items": 1}})
    said = []
    Pipeline(load_config(path), progress=False, echo=said.append).run("eval")
    notice = "[eval] forgetting suite: tinycode will be skipped: code execution is off; set " \
             "eval.allow_code_execution: true to include it"
    assert said.index(notice) < next(i for i, line in enumerate(said) if line.startswith("[generate] running"))
    results = json.loads(next((tmp_path / "runs" / "tiny").glob("eval-*/results.json")).read_text())
    assert results["forgetting"]["entries"] == [{"task": "tinycode", "skipped": notice.split("skipped: ")[1]}]
    # with the opt-in it is measured, and the target task's own skip is expected, so neither is noted
    opted_in, plain = EvalConfig(allow_code_execution=True, forgetting={"tasks": [code]}), \
        EvalConfig(forgetting={"tasks": [code]})
    assert suite_notices(load_task(str(tiny_task)), check_suite(opted_in), opted_in) == []
    assert suite_notices(load_task(code), check_suite(plain), plain) == []


def test_the_report_says_which_suite_tasks_cannot_show_forgetting_because_they_read_0_before():
    from protege.report import _forgetting_lines

    def entry(task, before, after):
        return {"task": task, "metric": "accuracy", "items": 50, "before": before, "before_ci": [before, before],
                "after": after, "after_ci": [after, after], "drop": 100 * (before - after), "p_value": 1.0,
                "max_drop": None, "passed": None}

    suite = {"entries": [entry("gsm8k", 0.0, 0.02), entry("mbpp", 0.06, 0.06), entry("nq_open", 0.0, 0.0),
                         {"task": "humaneval", "skipped": "no code execution"}], "passed": True, "failures": []}
    verdict = _forgetting_lines(suite)[-1]
    assert verdict.endswith("gsm8k, nq_open: the student scored 0 before training, so these cannot show forgetting; "
                            "name suite tasks it can do in eval.forgetting.tasks.")
    suite["entries"] = suite["entries"][1:2]
    assert "cannot show forgetting" not in _forgetting_lines(suite)[-1]

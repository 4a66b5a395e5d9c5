"""eval.teacher_shots, and eval rows that adopt a finished `protege eval` of the same model instead of rerunning it."""
import json
import shutil

from protege.config import EvalConfig, load_config
from protege.stage_keys import key_dump
from protege.evaluate.model_eval import evaluate_model
from protege.pipeline import Pipeline
from protege.tasks.spec import load_task
from tiny import write_tiny_config


def test_teacher_shots_unset_keeps_every_eval_key():
    old = EvalConfig().model_dump()
    del old["teacher_shots"]
    assert key_dump(EvalConfig()) == old
    assert key_dump(EvalConfig(teacher_shots=0))["teacher_shots"] == 0


def _scored_rows(monkeypatch):
    import protege.evaluate.model_eval as stage_module  # evaluate_measured calls it there

    scored = []
    real = stage_module.evaluate_lm
    # the eval stage's rows only (the forgetting suite's are scored through the same function)
    monkeypatch.setattr(stage_module, "evaluate_lm", lambda *a, **k: (k["desc"].startswith("eval ") and
                                                                      scored.append(k["desc"])) or real(*a, **k))
    return scored


def test_rows_adopt_a_finished_model_eval_with_the_same_shots(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    """The student's 1-shot `protege eval` is the few-shot row and, with teacher_shots 1, the teacher row (the
    teacher is the same tiny model): both read from it, the zero-shot row (no such run) is computed."""
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"teacher_shots": 1}))
    spec = load_task(str(tiny_task))
    done = evaluate_model(cfg.train.student, spec, shots=1, runs_dir=cfg.runs_dir, progress=False, echo=lambda m: None,
                          resamples=50)
    scored = _scored_rows(monkeypatch)
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("eval")
    assert scored == ["eval baseline (zero-shot)", "eval fine-tuned"]
    own = [json.loads(l) for l in (pipe.stages["eval"] / "samples" / f"{_slug(cfg)}-fewshot.jsonl").open()]
    theirs = {r["id"]: r for r in map(json.loads, open(f"{done['path']}/samples.jsonl"))}
    assert own == [theirs[r["id"]] for r in own] and len(own) == done["test_items"]
    rows = {r["row"]: r for r in json.loads((pipe.stages["eval"] / "results.json").read_text())["rows"]}
    assert rows["teacher (few-shot)"]["adopted_from"] == done["path"]
    assert rows["teacher (few-shot)"]["accuracy"] == done["summary"]["accuracy"]
    assert "adopted_from" not in rows["baseline (zero-shot)"]


def test_a_zero_shot_teacher_row_adopts_the_zero_shot_run_and_not_another(tmp_path, tiny_model_dir, tiny_task,
                                                                          monkeypatch):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"teacher_shots": 0}))
    spec = load_task(str(tiny_task))
    # a run with 2 shots per label (the rows show 1) and a run on fewer items are not the computation of any row
    evaluate_model(cfg.train.student, spec, shots=2, runs_dir=cfg.runs_dir, progress=False, echo=lambda m: None)
    evaluate_model(cfg.train.student, spec, shots=0, limit=3, runs_dir=cfg.runs_dir, progress=False,
                   echo=lambda m: None)
    scored = _scored_rows(monkeypatch)
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("report")
    # zero-shot (shared with the teacher row: same model, same shots), few-shot and fine-tuned all computed
    assert scored == ["eval baseline (zero-shot)", "eval baseline (few-shot)", "eval fine-tuned"]
    rows = {r["row"]: r for r in json.loads((pipe.stages["eval"] / "results.json").read_text())["rows"]}
    assert rows["teacher (few-shot)"]["shots"] == 0 and rows["baseline (few-shot)"]["shots"] == len(spec.labels)
    report = (pipe.stages["report"] / "report.md").read_text()  # the report names the row by its shots
    assert "| teacher (zero-shot) |" in report and "teacher (few-shot)" not in report


def _slug(cfg) -> str:
    return cfg.train.student.replace(":", "_").replace("/", "_")


def test_a_zero_shot_teacher_of_its_own_is_logged_and_shown_as_zero_shot(tmp_path, tiny_model_dir, tiny_task,
                                                                         monkeypatch):
    """A teacher that is not the student (a copy of the tiny model under another name), shown no examples: the
    test-access log and the progress bar call its read "teacher (zero-shot)", never "teacher (few-shot)"."""
    teacher = tmp_path / "teacher-copy"
    shutil.copytree(tiny_model_dir, teacher)
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, eval={"teacher_shots": 0},
                                        generate={"teacher": f"hf:{teacher}"}))
    scored = _scored_rows(monkeypatch)
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("eval")
    log = [json.loads(l) for l in (pipe.stages["eval"] / "test-access.jsonl").open()]
    assert [r["who"] for r in log] == ["baseline (zero-shot)", "baseline (few-shot)", "teacher (zero-shot)",
                                       "forgetting suite", "fine-tuned"]
    assert "eval teacher (zero-shot)" in scored and not any("teacher (few-shot)" in s for s in scored)
    rows = {r["row"]: r for r in json.loads((pipe.stages["eval"] / "results.json").read_text())["rows"]}
    assert rows["teacher (few-shot)"]["shots"] == 0  # results.json keeps the stored name

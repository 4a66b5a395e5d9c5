"""`run_bench` end to end on tiny models: report layout, data phase once per (task, teacher), traceable numbers,
the capacity diagnostic against an independent computation, reuse, resume after an interruption, failed cells."""
import json
import re
from pathlib import Path

import pytest

from protege.benchmark.config import parse_bench_config
from protege.benchmark.runner import run_bench
from protege.pipeline import Pipeline
from tiny import build_tiny_model, write_tiny_qa_task, write_tiny_task


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Two tiny students (seeds 0 and 1), two tiny tasks with different names, a one-task forgetting suite."""
    root = tmp_path_factory.mktemp("bench-assets")
    tiny2 = write_tiny_task(root / "tiny2")
    tiny2.write_text(tiny2.read_text().replace("name: tiny", "name: tiny2"))
    # Unbalanced labels (9 yes, 3 no), so students that lean to different labels score differently.
    test = [{"question": f"Is {i} a number ?", "answer": "no" if i % 4 == 0 else "yes"} for i in range(12)]
    (tiny2.parent / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    return {"m0": build_tiny_model(root / "m0", seed=0), "m1": build_tiny_model(root / "m1", seed=1),
            "tiny": write_tiny_task(root / "tiny"), "tiny2": tiny2, "suite": write_tiny_qa_task(root / "suite")}


def bench_dict(root: Path, assets: dict, name: str = "b", tasks=("tiny", "tiny2"), teachers=("m0", "m1"),
               students=("m0", "m1"), **extra) -> dict:
    """A bench small enough to run in seconds (the run settings of tests/tiny.py write_tiny_config)."""
    return {
        "name": name, "runs_dir": str(root / "runs"), "bench_dir": str(root / "bench"),
        "tasks": [str(assets[t]) for t in tasks],
        "teachers": [f"hf:{assets[t]}" for t in teachers],
        "students": [f"hf:{assets[s]}" for s in students],
        "base": {"generate": {"num_examples": 8, "batch_size": 4, "max_new_tokens": 6},
                 "curate": {"min_chars": 1},
                 "train": {"epochs": 2, "batch_size": 4, "lora_rank": 4, "lora_alpha": 8, "lr": 1e-2,
                           "checkpoint_every": 2},
                 "eval": {"bootstrap_resamples": 50, "forgetting": {"tasks": [str(assets["suite"])], "items": 6}}},
        "rank_resamples": 500,
        **extra,
    }


def stable(report: str) -> str:
    """The report without its sections of measured wall-clock time (seconds per item differ run to run)."""
    return re.sub(r"\n## [^\n]*measured time[^\n]*\n.*?(?=\n## |\Z)", "\n", report, flags=re.S)


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory, assets):
    """2 tasks x 2 teachers x 2 students x sft, run once without interruption; counts generate stages run."""
    root = tmp_path_factory.mktemp("unbroken")
    calls = []
    real = Pipeline._generate
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Pipeline, "_generate", lambda self, stage: calls.append(stage.path) or real(self, stage))
        messages = []
        out = run_bench(parse_bench_config(bench_dict(root, assets)), progress=False, echo=messages.append)
    return {"root": root, "out": out, "generated": calls, "messages": messages}


def test_bench_writes_the_report_sections_and_plots(unbroken):
    out = unbroken["out"]
    assert out == unbroken["root"] / "bench" / "b"
    report = (out / "report.md").read_text()
    for heading in ["# Bench b: 2 tasks x 2 teachers x 2 students x 1 method", "## Answers",
                    "## Teacher m0, method sft", "## Teacher m1, method sft", "### Scores per cell",
                    "### Ranks after fine-tuning", "### Plasticity ranks", "### Baseline ranks",
                    "### Friedman and Nemenyi", "### Students vs the teacher", "## Teacher selection",
                    "### Teachers head to head (per task, same test items)",
                    "### Capacity match (measured before training)", "## Metric vs inference cost (measured time)",
                    "## Model selection (uses measured time)", "## Models"]:
        assert heading in report, heading
    answers = report.split("## Answers")[1].split("\n## ")[0]
    for question in ["### With teacher m0 (sft)", "Strongest after fine-tuning over 2 tasks:", "Most plastic",
                     "Best baseline", "catch the teacher? tiny:", "Teacher for m0 (sft):", "Teacher for m1 (sft):"]:
        assert question in answers, question
    assert "mean rank" in answers and "t-interval, bootstrap [" in answers and "Friedman chi2 =" in answers
    assert answers.count("Its student on the same test items: tiny vs m") == 2  # each pick against the other teacher
    selection = report.split("## Teacher selection")[1].split("\n## ")[0]
    duels = "Head to head, the best teacher's student against each other's on the same items: tiny:"
    assert selection.count(duels) == 2
    assert "Cells not finished" not in report
    plots = sorted(p.name for p in (out / "plots").iterdir())
    assert plots == ["cost.png", "plasticity-0.png", "plasticity-1.png", "rank-0.png", "rank-1.png",
                     "vs-teacher-0.png", "vs-teacher-1.png"]
    for p in (out / "plots").iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (out / image).is_file()
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(plots) and "<table>" in page
    assert "Answers" in page and "Strongest after fine-tuning" in page


def test_every_linked_number_points_to_a_finished_run_directory(unbroken):
    out = unbroken["out"]
    report = (out / "report.md").read_text()
    links = re.findall(r"\[([^\]]+)\]\(([^)]+)\)", report)
    targets = {target for text, target in links if not target.endswith(".png")}
    assert {Path(t).name.split("-")[0] for t in targets} == {"eval", "capacity"}
    assert len([t for t in targets if "/eval-" in t]) == 8 and len([t for t in targets if "/capacity-" in t]) == 8
    for target in targets:
        assert (out / target / "MANIFEST.json").is_file(), target
    analysis = json.loads((out / "analysis.json").read_text())
    for rec in analysis["records"]:  # each tuned score is the fine-tuned row of that cell's own results.json
        results = json.loads((Path(rec["eval_dir"]) / "results.json").read_text())
        row = next(r for r in results["rows"] if r["row"] == "fine-tuned")
        assert rec["tuned"]["value"] == row[results["metric"]]
        items = rec["tuned_items"]  # one score per test item, what the teachers' head-to-head tests pair up
        assert len(items) == results["test_items"]
        assert sum(items.values()) / len(items) == pytest.approx(rec["tuned"]["value"])
        assert results["config"]["train"]["student"] == rec["student"]
        assert results["config"]["generate"]["teacher"] == rec["teacher"]


def test_the_report_counts_every_test_read_the_bench_logged(unbroken):
    logs = [p for p in (unbroken["root"] / "runs").glob("*/*/test-access.jsonl")
            if p.parent.name.rsplit("-", 1)[0] in ("eval", "curate")]
    entries = [json.loads(line) for p in logs for line in p.read_text().splitlines()]
    reads = json.loads((unbroken["out"] / "analysis.json").read_text())["test_reads"]
    counted = {p: sum(t.values()) for p, t in reads["by_purpose"].items()}
    assert counted == {p: sum(e["purpose"] == p for e in entries) for p in {e["purpose"] for e in entries}}
    assert counted["final evaluation"] >= 8 * 2  # each of the 8 cells reads at least its base and fine-tuned rows
    assert reads["eval_stages"] == 8
    assert reads["curate_stages"] == sum(p.parent.name.startswith("curate-") for p in logs)
    report = (unbroken["out"] / "report.md").read_text()
    assert f"record {len(entries)} reads of a test set: " in report.split("## Test-set reads")[1]


def test_data_phase_generates_once_per_task_and_teacher_before_any_cell(unbroken):
    runs = unbroken["root"] / "runs"
    assert len(unbroken["generated"]) == len(set(unbroken["generated"])) == 4  # 2 tasks x 2 teachers, not x students
    for task in ("tiny", "tiny2"):
        names = [p.name.rsplit("-", 1)[0] for p in (runs / task).iterdir()]
        assert names.count("generate") == names.count("curate") == 2
        assert names.count("train") == names.count("eval") == 4
        # baselines and teachers computed once across cells: each model zero- and few-shot (the teachers are the
        # students, so a teacher row is its model's few-shot row), not 3 rows in each of the 4 cells
        assert names.count("eval-row") == 4
        assert names.count("capacity") == 4  # each student on each teacher's data
    status = [json.loads(p.read_text()) for p in (unbroken["out"] / "status").iterdir()]
    data = [s for s in status if s["kind"] == "data"]
    cells = [s for s in status if s["kind"] == "cell"]
    assert len(data) == 4 and len(cells) == 8 and all(s["ok"] for s in status)
    assert max(s["ended"] for s in data) <= min(s["started"] for s in cells)


def test_capacity_nll_is_the_students_loss_on_that_teachers_curated_answers(unbroken):
    import torch
    from transformers import AutoModelForCausalLM

    from protege.models.resolve import load_lm
    from protege.tasks.spec import load_task
    from protege.train.sft import build_examples

    rec = next(r for r in json.loads((unbroken["out"] / "analysis.json").read_text())["records"]
               if r["task"] == "tiny2" and r["student"].endswith("m1") and r["teacher"].endswith("m0"))
    cap = json.loads((Path(rec["capacity"]["dir"]) / "capacity.json").read_text())
    curate = Path(cap["curate"])
    assert curate.parent.name == "tiny2" and json.loads((curate / "MANIFEST.json").read_text())["stage"] == "curate"
    assert cap["student"] == rec["student"] and cap["teacher"] == rec["teacher"]
    # Independently: the plain Hugging Face loss, one unpadded example at a time, weighted by answer tokens.
    rows = [json.loads(line) for line in (curate / "data" / "train.jsonl").read_text().splitlines()]
    lm = load_lm(rec["student"])
    model = AutoModelForCausalLM.from_pretrained(rec["student"][3:]).eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for ex in build_examples(load_task(_task_path(rec)), rows, lm, 256):
            n = sum(1 for label in ex["labels"][1:] if label != -100)
            loss = model(input_ids=torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]])).loss
            total, tokens = total + float(loss) * n, tokens + n
    assert cap["tokens"] == tokens > 0 and cap["examples"] == len(rows)
    assert cap["nll_per_token"] == pytest.approx(total / tokens, rel=1e-4)
    assert rec["capacity"]["nll"] == cap["nll_per_token"]


def _task_path(rec: dict) -> str:
    results = json.loads((Path(rec["eval_dir"]) / "results.json").read_text())
    return results["config"]["task"]


def test_rerun_reuses_every_cell_and_writes_the_same_report(unbroken, assets):
    out = unbroken["out"]
    before = (out / "report.md").read_text()
    messages = []
    run_bench(parse_bench_config(bench_dict(unbroken["root"], assets)), progress=False, echo=messages.append)
    assert any("all 8 cells already finished" in m for m in messages)
    assert (out / "report.md").read_text() == before  # same run directories: the same report, timings included


def test_bench_interrupted_midway_resumes_to_the_same_report(tmp_path, assets, unbroken, monkeypatch):
    import protege.train.loop as loop

    bench = parse_bench_config(bench_dict(tmp_path, assets))
    real_save = loop._save_checkpoint
    saves = {"n": 0}

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        saves["n"] += 1
        if saves["n"] == 3:  # 6 steps, a checkpoint every 2 (not after the last): the second cell's first
            raise KeyboardInterrupt("simulated kill in the middle of the second cell's training")

    monkeypatch.setattr(loop, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_bench(bench, progress=False, echo=lambda m: None)
    assert not (bench.out_dir / "report.md").exists()
    trains = sorted((tmp_path / "runs" / "tiny").glob("train-*"))
    assert [(t / "MANIFEST.json").exists() for t in trains].count(True) == 1  # one cell done, one cut short
    assert [(t / "checkpoint").is_dir() for t in trains].count(True) == 1
    monkeypatch.setattr(loop, "_save_checkpoint", real_save)
    partial = run_bench(bench, progress=False, echo=lambda m: None, run=False)  # report only: runs nothing
    assert sorted((tmp_path / "runs" / "tiny").glob("train-*")) == trains
    assert "1 of 8 cells finished" in (partial / "report.md").read_text()
    messages = []
    out = run_bench(bench, progress=False, echo=messages.append)
    assert any("data phase: 0 of 4" in m for m in messages)  # the data phase had finished: nothing generated twice
    assert any("cells: 7 to run, 1 already finished" in m for m in messages)
    resumed, reference = (out / "report.md").read_text(), (unbroken["out"] / "report.md").read_text()
    assert "## Metric vs inference cost (measured time)" in resumed
    assert stable(resumed) == stable(reference)
    assert stable(resumed) != resumed  # the comparison did drop the measured-time sections, and only those
    assert "### Students vs the teacher" in stable(resumed)


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path, assets, monkeypatch):
    real_eval = Pipeline._eval

    def eval_or_fail(self, stage):
        if self.cfg.train.student.endswith("m1"):
            raise RuntimeError("injected evaluation failure")
        return real_eval(self, stage)

    monkeypatch.setattr(Pipeline, "_eval", eval_or_fail)
    bench = parse_bench_config(bench_dict(tmp_path, assets, tasks=("tiny",), teachers=("m0",)))
    out = run_bench(bench, progress=False, echo=lambda m: None)
    status = [json.loads(p.read_text()) for p in (out / "status").iterdir() if json.loads(p.read_text())["kind"] == "cell"]
    assert sorted(s["ok"] for s in status) == [False, True]
    failed = next(s for s in status if not s["ok"])
    assert failed["error"] == "RuntimeError: injected evaluation failure" and "Traceback" in failed["traceback"]
    report = (out / "report.md").read_text()
    assert "## Cells not finished" in report and "RuntimeError: injected evaluation failure" in report
    assert "1 of 2 cells finished" in report
    assert "Strongest after fine-tuning over 1 task: m0" in report
    assert "Friedman/Nemenyi: not enough tasks" in report

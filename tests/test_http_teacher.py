"""The generate stage with an OpenAI-compatible teacher (a real `protege serve` process): a budget stops it
cleanly with finished work saved, raising the budget resumes it, and the dry-run projects its tokens."""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.synth.generate import BudgetReached
from tiny import write_tiny_config


def http_pipeline(tmp_path, server, task, **sections):
    teacher = f"openai:{server.model}@{server.url}"
    sections.setdefault("generate", {}).update(teacher=teacher, num_examples=12, batch_size=4, max_new_tokens=4)
    return Pipeline(load_config(write_tiny_config(tmp_path, server.model_dir, task, **sections)), progress=False,
                    echo=lambda m: None)


def test_a_token_budget_stops_generation_cleanly_and_a_larger_one_finishes_it(tmp_path, tiny_server, tiny_task):
    pipe = http_pipeline(tmp_path, tiny_server, tiny_task, cost={"token_budget": 600},
                         endpoint={"max_concurrency": 2})
    samples = pipe.stages["generate"] / "samples.jsonl"
    with pytest.raises(BudgetReached) as err:
        pipe.run("generate")
    assert "raise cost.budget" in str(err.value)
    saved = [json.loads(line) for line in samples.read_text().splitlines()]
    spent = sum(r["tokens_in"] + r["tokens_out"] for r in saved)
    assert 0 < len(saved) < 12 and not pipe.stages["generate"].complete
    assert spent < 600 + 2 * max(r["tokens_in"] + r["tokens_out"] for r in saved)  # at most the in-flight ones over
    assert all(r["teacher"].startswith("openai:") for r in saved)

    # The budget is not part of the stage key: the same stage resumes, and the spent tokens still count.
    more = http_pipeline(tmp_path, tiny_server, tiny_task, cost={"token_budget": 100_000})
    assert more.stages["generate"].path == pipe.stages["generate"].path
    more.run("generate")
    ids = [json.loads(line)["id"] for line in samples.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12 and ids[: len(saved)] == [r["id"] for r in saved]


def test_dry_run_for_an_http_teacher_calibrates_characters_per_token_from_usage(tmp_path, tiny_server, tiny_task):
    from protege.synth.projection import format_projection, project_generation
    from protege.synth.teacher import load_teacher

    pipe = http_pipeline(tmp_path, tiny_server, tiny_task, cost={"price_in_per_m": 1.0, "price_out_per_m": 2.0})
    lm = load_teacher(pipe.cfg, pipe.stages["generate"])
    proj = project_generation(pipe.spec, pipe.cfg.generate, lm, price_in_per_m=1.0, price_out_per_m=2.0)
    pipe.run("generate")
    records = [json.loads(line) for line in (pipe.stages["generate"] / "samples.jsonl").read_text().splitlines()]
    measured_in = sum(r["tokens_in"] for r in records)
    assert abs(proj["tokens_in"] - measured_in) <= 0.3 * measured_in
    assert "usage reported" in proj["tokens_in_method"] and "$" in format_projection(proj)


def test_the_report_prices_an_http_teachers_answers_and_the_student_beside_it(tmp_path, tiny_server, tiny_task):
    pipe = http_pipeline(tmp_path, tiny_server, tiny_task, cost={"price_in_per_m": 0.5, "price_out_per_m": 2.0})
    stage = pipe.run("report")
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    rows = {r["row"]: r for r in results["rows"]}
    teacher = rows["teacher (few-shot)"]
    assert teacher["model"].startswith("openai:") and teacher["scoring"] == "generate"
    expected = 1000 * (teacher["tokens_in_mean"] * 0.5 + teacher["tokens_out_mean"] * 2.0) / 1e6
    assert teacher["tokens_in_mean"] > 0 and abs(teacher["money_per_1k"] - expected) < 1e-12
    assert rows["fine-tuned"]["money_per_1k"] is None and teacher["peak_rss_mb"] is None
    report = (stage / "report.md").read_text()
    assert "per 1000 answers at the configured prices" in report and "1/" in report


def test_an_endpoint_on_a_likelihood_scored_task_generates_instead(tmp_path, tiny_server, tiny_task):
    from protege.evaluate.model_eval import evaluate_model
    from protege.tasks.spec import load_task

    said = []
    results = evaluate_model(f"openai:{tiny_server.model}@{tiny_server.url}", load_task(str(tiny_task)), limit=4,
                             runs_dir=tmp_path / "runs", progress=False, echo=said.append)
    assert results["scoring"] == "generate" and results["summary"]["n"] == 4
    assert "cannot score label likelihoods" in said[0]

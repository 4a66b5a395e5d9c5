"""The generate-stage projection: exact prompt tokens, price arithmetic, agreement with a real run, resume.

    .venv/bin/python -m pytest -q tests/test_projection.py
"""
import pytest

from protege.config import load_config
from protege.models.local import LocalLM
from protege.store import JsonlLog, StageDir
from protege.synth.generate import run_generate
from protege.synth.plan import planned_requests
from protege.synth.projection import format_projection, project_generation
from protege.tasks.spec import load_task
from tiny import write_tiny_config


@pytest.fixture()
def setup(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task,
                                        generate={"num_examples": 24, "batch_size": 4, "max_new_tokens": 8}))
    lm = LocalLM.from_dir(tiny_model_dir, name="tiny", batch_size=4)
    return load_task(cfg.task), cfg.generate, lm, tmp_path


def test_prompt_tokens_are_counted_exactly_and_no_calibration_gives_the_upper_bound(setup):
    spec, cfg, lm, _ = setup
    p = project_generation(spec, cfg, lm, calibrate=0)
    prompts = [r["prompt"] for r in planned_requests(spec, cfg)]
    assert p["examples"] == 24 and p["batches"] == 6
    assert p["tokens_in"] == sum(lm.count_tokens(lm.render(q)) for q in prompts)
    assert p["tokens_out_est"] == 24 * 8 and p["seconds_est"] is None and p["calibration"] is None
    assert "upper bound" in format_projection(p)


def test_cost_is_tokens_times_price_per_million(setup):
    spec, cfg, lm, _ = setup
    p = project_generation(spec, cfg, lm, calibrate=0, price_in_per_m=2.0, price_out_per_m=10.0)
    assert p["cost_est"] == pytest.approx(p["tokens_in"] * 2.0 / 1e6 + p["tokens_out_est"] * 10.0 / 1e6)
    assert p["cost_est"] > 0 and "$2/M tokens in" in format_projection(p)
    assert project_generation(spec, cfg, lm, calibrate=0)["cost_est"] == 0


def test_projection_agrees_with_the_run_it_predicts(setup):
    spec, cfg, lm, tmp_path = setup
    p = project_generation(spec, cfg, lm)  # one batch of 4 calibrates the 24
    stage = StageDir(tmp_path / "runs", "tiny", "generate", "x")
    stage.start({})
    run_generate(spec, cfg, stage, lm, progress=False)
    records = {r["id"]: r for r in JsonlLog(stage / "samples.jsonl").read()}
    assert p["calibration"]["examples"] == 4 and p["seconds_est"] > p["calibration"]["seconds"] > 0
    # Prompt tokens are exact; the calibration batch is the real run's first batch, token for token.
    assert p["tokens_in"] == sum(r["tokens_in"] for r in records.values())
    first = [records[r["id"]] for r in planned_requests(spec, cfg)[:4]]
    assert p["calibration"]["tokens_out"] == sum(r["tokens_out"] for r in first)
    real_out = sum(r["tokens_out"] for r in records.values())
    assert abs(p["tokens_out_est"] - real_out) <= 0.5 * real_out


def test_done_ids_leave_only_pending_requests_in_the_projection(setup):
    spec, cfg, lm, _ = setup
    plan = planned_requests(spec, cfg)
    p = project_generation(spec, cfg, lm, done_ids=[r["id"] for r in plan[:10]])
    assert p["examples"] == 14 and p["already_done"] == 10 and p["batches"] == 4
    assert p["tokens_in"] == sum(lm.count_tokens(lm.render(r["prompt"])) for r in plan[10:])
    assert p["calibration"]["examples"] == 4
    finished = project_generation(spec, cfg, lm, done_ids=[r["id"] for r in plan])
    assert finished["examples"] == finished["tokens_in"] == finished["tokens_out_est"] == 0
    assert finished["calibration"] is None and "nothing to generate" in format_projection(finished)
    with pytest.raises(ValueError, match="calibrate"):
        project_generation(spec, cfg, lm, calibrate=-1)


def test_cli_dry_run_prints_projection_and_generates_nothing(tmp_path, tiny_model_dir, tiny_task):
    from typer.testing import CliRunner

    from protege.cli import app
    from tiny import write_tiny_config

    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    result = CliRunner().invoke(app, ["generate", str(path), "--dry-run", "cost.price_in_per_m=1",
                                      "cost.price_out_per_m=2"])
    assert result.exit_code == 0, result.output
    assert "8 examples to generate (0 already done)" in result.output and "at $1/M tokens in" in result.output
    assert not list((tmp_path / "runs").glob("*/generate-*/samples.jsonl"))

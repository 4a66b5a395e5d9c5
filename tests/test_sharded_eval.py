"""Evaluation rows on 2 Ray workers (a local cluster): the eval stage's records equal one process's, and a worker
killed mid-row is restarted by Ray with its chunk retried: every item once, none lost.

    pytest -q tests/test_sharded_eval.py
"""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from ray_kill import kill_first_worker_after
from tiny import write_tiny_config, write_tiny_task


def _rows(stage) -> dict:
    results = json.loads((stage.path / "results.json").read_text())
    out = {}
    for row in results["rows"]:
        lines = (stage.path / row["samples"]).read_text().splitlines()
        out[row["row"]] = sorted((r["id"], r["prediction"], r["correct"]) for r in map(json.loads, lines))
    return out


@pytest.mark.precision("fp32")
def test_the_eval_stage_on_two_workers_gives_one_processs_records(tmp_path, tiny_model_dir, ray_cluster):
    task = write_tiny_task(tmp_path / "task", n_test=40)
    local = Pipeline(load_config(write_tiny_config(tmp_path / "local", tiny_model_dir, task)), progress=False,
                     echo=lambda m: None).run("eval")
    config = write_tiny_config(tmp_path / "ray", tiny_model_dir, task)
    sharded = Pipeline(load_config(config, ["executor.kind=ray", "executor.workers=2"]), progress=False,
                       echo=lambda m: None)
    plain = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    assert sharded.stages["eval"].key == plain.stages["eval"].key  # the executor is no part of the key
    stage = sharded.run("eval")
    got, expected = _rows(stage), _rows(local)
    assert got == expected and len(got["fine-tuned"]) == 40
    ray_rows = json.loads((stage.path / "results.json").read_text())["rows"]
    assert all(r["ray_workers"] == 2 for r in ray_rows)


@pytest.mark.precision("fp32")
def test_a_killed_eval_worker_loses_no_item(tmp_path, tiny_model_dir, ray_cluster):
    from protege.config import ExecutorSettings
    from protege.evaluate.sharded import evaluate_on_ray
    from protege.store import JsonlLog
    from protege.tasks.spec import load_task

    spec = load_task(str(write_tiny_task(tmp_path / "task", n_test=120)))
    items = spec.test_examples()
    log = JsonlLog(tmp_path / "row" / "samples.jsonl")
    killed = []
    kill_one = kill_first_worker_after(ray_cluster, lambda: log.path, 30, killed)

    records = evaluate_on_ray(f"hf:{tiny_model_dir}", None, spec, items, [], log, "likelihood", False,
                              ExecutorSettings(kind="ray", workers=2), chunk=2, progress=False, on_workers=kill_one)
    ids = [json.loads(line)["id"] for line in log.path.read_text().splitlines()]
    assert killed and killed[0] < 120, killed
    assert [r["id"] for r in records] == [it.id for it in items]
    assert len(ids) == len(set(ids)) == 120


@pytest.mark.precision("fp32")
def test_protege_eval_model_on_ray_workers(tmp_path, tiny_model_dir, ray_cluster):
    from typer.testing import CliRunner

    from protege.cli import app

    task = write_tiny_task(tmp_path / "task", n_test=40)
    args = ["eval", "--model", f"hf:{tiny_model_dir}", "--task", str(task), "--shots", "1"]
    local = CliRunner().invoke(app, args + ["--runs-dir", str(tmp_path / "local")])
    sharded = CliRunner().invoke(app, args + ["--runs-dir", str(tmp_path / "ray"), "--executor", "ray"])
    assert local.exit_code == sharded.exit_code == 0, sharded.output
    line = [ln for ln in local.output.splitlines() if " accuracy = " in ln][0].split(";")[0]
    assert line in sharded.output  # the same score, interval and item count

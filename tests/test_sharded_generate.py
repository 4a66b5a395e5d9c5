"""The generate stage on 2 Ray workers (a local cluster): the same records as one process (same ids, texts,
seeds), and after a worker is killed mid-stage, Ray brings it back and retries its batch: no id lost, none twice.

    pytest -q tests/test_sharded_generate.py
"""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from ray_kill import kill_first_worker_after
from tiny import write_tiny_config


def _records(stage) -> list[dict]:
    return [json.loads(line) for line in (stage.path / "samples.jsonl").read_text().splitlines()]


def _config(tmp_path, tiny_model_dir, tiny_task, *overrides):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task, generate={"num_examples": 48, "batch_size": 4})
    return load_config(path, list(overrides))


@pytest.mark.precision("fp32")
def test_two_workers_write_what_one_process_writes(tmp_path, tiny_model_dir, tiny_task, ray_cluster):
    local = Pipeline(_config(tmp_path / "local", tiny_model_dir, tiny_task), progress=False,
                     echo=lambda m: None).run("generate")
    sharded = Pipeline(_config(tmp_path / "ray", tiny_model_dir, tiny_task, "executor.kind=ray",
                               "executor.workers=2"), progress=False, echo=lambda m: None)
    assert sharded.stages["generate"].key == local.key  # the executor is no part of the key
    stage = sharded.run("generate")
    by_id = {r["id"]: r for r in _records(local)}
    got = _records(stage)
    assert sorted(r["id"] for r in got) == sorted(by_id) and len(got) == 48
    assert all(r["raw"] == by_id[r["id"]]["raw"] for r in got)


@pytest.mark.precision("fp32")
def test_a_killed_worker_loses_nothing_and_duplicates_nothing(tmp_path, tiny_model_dir, tiny_task, ray_cluster,
                                                              monkeypatch):
    from protege.synth import sharded

    cfg = _config(tmp_path, tiny_model_dir, tiny_task, "executor.kind=ray", "executor.workers=2",
                  "generate.num_examples=300")
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    killed = []
    kill = kill_first_worker_after(ray_cluster, lambda: pipe.stages["generate"].path / "samples.jsonl", 100, killed)
    real = sharded.run_generate_sharded
    monkeypatch.setattr(sharded, "run_generate_sharded", lambda *a, **k: real(*a, **k, on_workers=kill))
    stage = pipe.run("generate")
    ids = [r["id"] for r in _records(stage)]
    assert killed and killed[0] < 300, killed  # killed mid-stage
    assert len(ids) == len(set(ids)) == 300

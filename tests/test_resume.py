"""A stage killed midway resumes without duplicating records or losing finished work."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from protege.synth.plan import planned_requests
from interrupt import die_after_checkpoint
from tiny import write_tiny_config

KILL_AND_RUN = """
import sys
from protege.config import load_config
from protege.pipeline import Pipeline
Pipeline(load_config(sys.argv[1]), progress=False).run(sys.argv[2])
"""


def _run_and_kill(config: Path, until: str, watch: Path, min_lines: int, timeout: float = 120,
                  delay: float = 0.0) -> bool:
    """Start a stage in a child process and SIGKILL it `delay` seconds after `watch` has min_lines lines;
    True if it was still running to be killed."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", KILL_AND_RUN, str(config), until], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if watch.exists() and watch.read_text().count("\n") >= min_lines:
            time.sleep(delay)
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


def test_generation_killed_with_sigkill_resumes_without_duplicates(tmp_path, tiny_model_dir, tiny_task):
    config = write_tiny_config(tmp_path, tiny_model_dir, tiny_task, generate={"num_examples": 24, "batch_size": 4})
    cfg = load_config(config)
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    samples = pipe.stages["generate"] / "samples.jsonl"
    killed = _run_and_kill(config, "generate", samples, min_lines=4)
    assert killed, "the child finished before it could be killed; make the stage longer"
    assert not pipe.stages["generate"].complete
    before = samples.read_text().count("\n")
    assert 4 <= before < 24
    pipe.run("generate")
    ids = [json.loads(l)["id"] for l in samples.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 24
    summary = json.loads((pipe.stages["generate"] / "MANIFEST.json").read_text())["summary"]
    # the killed process's time counts too (until its last write), beside the run that finished the stage
    assert summary["stage_runs"] == 2 and summary["stage_seconds_all_runs"] > summary["stage_seconds"]
    assert set(ids) == {r["id"] for r in planned_requests(pipe.spec, cfg.generate)}


def test_generation_killed_several_times_at_random_points_ends_with_an_unbroken_runs_ids(tmp_path, tiny_model_dir):
    """Issue 4: SIGKILL at random moments, three times, then finish: the ids equal an unbroken run's, once each."""
    import random

    from tiny import write_tiny_qa_task

    task = write_tiny_qa_task(tmp_path / "qa")  # a whole-item (generative) task, not one-line classification
    gen = {"num_examples": 40, "batch_size": 2, "max_new_tokens": 6}
    unbroken_cfg = load_config(write_tiny_config(tmp_path / "unbroken", tiny_model_dir, task, generate=gen))
    unbroken = Pipeline(unbroken_cfg, progress=False, echo=lambda m: None)
    unbroken.run("generate")
    expected = [r["id"] for r in JsonlLog(unbroken.stages["generate"] / "samples.jsonl").read()]

    config = write_tiny_config(tmp_path / "killed", tiny_model_dir, task, generate=gen)
    pipe = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    samples = pipe.stages["generate"] / "samples.jsonl"
    rng = random.Random(4)
    kills, target = 0, 0
    for _ in range(3):
        target = rng.randint(target + 1, target + 10)  # a random point further on each time
        kills += _run_and_kill(config, "generate", samples, min_lines=target, delay=rng.uniform(0, 0.3))
    assert kills >= 2, "the child finished before most kills; make the stage longer"
    assert not pipe.stages["generate"].complete
    pipe.run("generate")
    lines = samples.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)), "a request was written twice"
    assert sorted(ids) == sorted(expected) and len(expected) == 40


def test_training_interrupted_resumes_to_the_same_loss_curve(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    config = write_tiny_config(tmp_path / "a", tiny_model_dir, tiny_task, train={"epochs": 3})
    unbroken = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    unbroken.run("train")
    reference = [r["loss"] for r in JsonlLog(unbroken.stages["train"] / "train_log.jsonl").read()]

    config_b = write_tiny_config(tmp_path / "b", tiny_model_dir, tiny_task, train={"epochs": 3})
    broken = Pipeline(load_config(config_b), progress=False, echo=lambda m: None)
    undo = die_after_checkpoint(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        broken.run("train")
    assert not broken.stages["train"].complete
    undo()
    broken.run("train")
    resumed = [r["loss"] for r in JsonlLog(broken.stages["train"] / "train_log.jsonl").read()]
    assert resumed == pytest.approx(reference, rel=1e-5)


def test_slow_steps_are_checkpointed_by_time_as_well(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    """checkpoint_every 20 is never reached by a 6-step run; a checkpoint is also due once CHECKPOINT_SECONDS have
    passed (0 here: after every step), so a run killed at step 1 resumes there, on the same loss curve."""
    import protege.train.loop as loop

    config = write_tiny_config(tmp_path / "a", tiny_model_dir, tiny_task, train={"epochs": 3, "checkpoint_every": 20})
    unbroken = Pipeline(load_config(config), progress=False, echo=lambda m: None)
    unbroken.run("train")
    reference = [r["loss"] for r in JsonlLog(unbroken.stages["train"] / "train_log.jsonl").read()]
    assert len(reference) < 20

    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    config_b = write_tiny_config(tmp_path / "b", tiny_model_dir, tiny_task, train={"epochs": 3, "checkpoint_every": 20})
    broken = Pipeline(load_config(config_b), progress=False, echo=lambda m: None)
    undo = die_after_checkpoint(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        broken.run("train")
    position = json.loads((broken.stages["train"] / "checkpoint" / "position.json").read_text())
    assert position == {"step": 1}
    undo()
    broken.run("train")
    resumed = [r["loss"] for r in JsonlLog(broken.stages["train"] / "train_log.jsonl").read()]
    assert resumed == pytest.approx(reference, rel=1e-5)

"""The teacher gate scores the teacher on validation items (or seeds not shown as shots) before generation,
refuses below the threshold with an error naming the setting, and is recorded either way."""
import json

import pytest

from protege.config import load_config
from protege.pipeline import Pipeline
from protege.synth.teacher_gate import TeacherBelowGate, gate_items
from tiny import write_tiny_config


def pipeline(tmp_path, model, task, **gate):
    cfg = load_config(write_tiny_config(tmp_path, model, task, teacher_gate=gate))
    return Pipeline(cfg, progress=False, echo=lambda m: None)


def test_a_teacher_below_the_gate_is_refused_before_generating(tmp_path, tiny_model_dir, tiny_task):
    pipe = pipeline(tmp_path, tiny_model_dir, tiny_task, min_score=101)
    with pytest.raises(TeacherBelowGate) as err:
        pipe.run("generate")
    assert "teacher_gate.min_score=101" in str(err.value) and "teacher_gate.force=true" in str(err.value)
    stage = pipe.stages["generate"]
    verdict = json.loads((stage / "teacher-gate.json").read_text())
    assert verdict["passed"] is False and verdict["source"] == "seeds not used as shots"
    assert not (stage / "samples.jsonl").exists(), "no budget spent on generation"
    assert not (stage / "test-access.jsonl").exists(), "the gate never reads the test set"


def test_forcing_the_gate_generates_and_records_the_forced_verdict(tmp_path, tiny_model_dir, tiny_task):
    pipe = pipeline(tmp_path, tiny_model_dir, tiny_task, min_score=101, force=True)
    pipe.run("generate")
    verdict = json.loads((pipe.stages["generate"] / "teacher-gate.json").read_text())
    assert verdict["forced"] is True and verdict["items"] == 2  # 4 seeds, one shot per label held out
    assert (pipe.stages["generate"] / "samples.jsonl").read_text().count("\n") == 8


def test_gate_items_never_include_the_shots(tiny_task):
    from protege.tasks.spec import load_task

    items, shots, _ = gate_items(load_task(str(tiny_task)), items=10, shots=1)
    assert {e.id for e in items}.isdisjoint({e.id for e in shots}) and len(items) + len(shots) == 4

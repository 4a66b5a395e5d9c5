"""An eval stage resumed under a different adapter re-scores the fine-tuned records instead of mixing two
students' answers (a training stage repeated on another machine is not bit-identical)."""
import json

import pytest

from protege.evaluate.adapter_guard import RECORD, guard_adapter
from protege.store import StageDir


def _stage(tmp_path):
    stage = StageDir(tmp_path / "runs", "mbpp", "eval", "abc")
    for name in ["samples/finetuned-zeroshot.jsonl", "samples/hf_student-zeroshot.jsonl",
                 "forgetting/humaneval-after.jsonl", "forgetting/humaneval-before.jsonl"]:
        (stage.path / name).parent.mkdir(parents=True, exist_ok=True)
        (stage.path / name).write_text('{"id": "1"}\n')
    return stage


def _adapter(tmp_path, weights: bytes):
    adapter = tmp_path / "adapter"
    adapter.mkdir(exist_ok=True)
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    (adapter / "README.md").write_text("not weights")
    return adapter


def _files(stage):
    return sorted(str(p.relative_to(stage.path)) for p in stage.path.rglob("*.jsonl*"))


def test_the_same_adapter_keeps_every_record(tmp_path):
    stage, adapter = _stage(tmp_path), _adapter(tmp_path, b"weights A")
    before = _files(stage)
    assert guard_adapter(stage, adapter, echo=lambda m: None) == []  # a stage begun before the record: trusted
    assert json.loads((stage.path / RECORD).read_text())["sha256"]
    (adapter / "README.md").write_text("edited card")  # not weights: does not count
    assert guard_adapter(stage, adapter, echo=lambda m: None) == []
    assert _files(stage) == before


def test_another_adapter_moves_only_the_fine_tuned_records_aside(tmp_path):
    stage, adapter = _stage(tmp_path), _adapter(tmp_path, b"weights A")
    guard_adapter(stage, adapter, echo=lambda m: None)
    first = json.loads((stage.path / RECORD).read_text())["sha256"]
    (adapter / "adapter_model.safetensors").write_bytes(b"weights A, retrained elsewhere")
    said = []
    moved = guard_adapter(stage, adapter, echo=said.append)
    assert [p.name for p in moved] == [f"humaneval-after.jsonl.stale-{first[:12]}",
                                       f"finetuned-zeroshot.jsonl.stale-{first[:12]}"]
    assert _files(stage) == ["forgetting/humaneval-after.jsonl.stale-" + first[:12],
                             "forgetting/humaneval-before.jsonl",
                             "samples/finetuned-zeroshot.jsonl.stale-" + first[:12],
                             "samples/hf_student-zeroshot.jsonl"]
    assert "2 fine-tuned record file(s) moved aside" in said[0]
    assert json.loads((stage.path / RECORD).read_text())["sha256"] != first
    assert guard_adapter(stage, adapter, echo=said.append) == []  # the new adapter is now the recorded one


def test_an_adapter_without_weights_is_refused(tmp_path):
    (tmp_path / "adapter").mkdir()
    with pytest.raises(FileNotFoundError, match="no adapter weights"):
        guard_adapter(_stage(tmp_path), tmp_path / "adapter")

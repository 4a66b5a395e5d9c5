"""An eval stage resumes the records it scored with the fine-tuned student only when the adapter is the one
that began them.

    moved = guard_adapter(stage, adapter_dir)  # before the fine-tuned row or the forgetting suite's "after" half

An eval stage is resumable per item, and its training stage may be re-run underneath it: on another machine
(an eval stage carried by `protege runs pack` without its adapter, whose training is then repeated), or after a
training stage was deleted. Training on another CPU is not bit-identical, so a resumed row would mix two
students' answers. The first call writes the adapter's weights sha256 to `adapter.json` in the stage; a later
call with other weights moves that stage's fine-tuned records aside (`<name>.stale-<sha12>`, kept for a look,
never read) so they are scored again by the adapter in hand. Records that do not depend on the adapter (the
baseline and teacher rows, the suite's "before" half) stay. A stage that began before this record existed has
no adapter.json: its records are trusted once and the record is written then.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from protege.store import StageDir, atomic_write_json, read_json

RECORD = "adapter.json"
WEIGHTS = ("*.safetensors", "*.bin")


def adapter_sha256(adapter_dir: Path) -> str:
    """sha256 over the adapter's weight files, by name, in name order (its README and config do not count)."""
    h = hashlib.sha256()
    files = sorted(p for pattern in WEIGHTS for p in Path(adapter_dir).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no adapter weights (*.safetensors, *.bin) in {adapter_dir}")
    for path in files:
        h.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def finetuned_records(stage: StageDir) -> list[Path]:
    """The stage's records that the fine-tuned student wrote: its test row and the suite's "after" half."""
    return sorted([*(stage.path / "samples").glob("finetuned-*.jsonl"),
                   *(stage.path / "forgetting").glob("*-after.jsonl")])


def guard_adapter(stage: StageDir, adapter_dir: Path, echo=print) -> list[Path]:
    """Record the adapter this stage evaluates, or, when it differs from the recorded one, move the records the
    other adapter scored aside. Returns the paths they were moved to."""
    sha = adapter_sha256(adapter_dir)
    record = stage.path / RECORD
    old = read_json(record)["sha256"] if record.exists() else None
    if old == sha:
        return []
    moved = []
    if old is not None:
        for path in finetuned_records(stage):
            target = path.with_name(f"{path.name}.stale-{old[:12]}")
            path.rename(target)
            moved.append(target)
        echo(f"[eval] the adapter in {adapter_dir} is not the one this stage began with (sha256 {sha[:12]}, was "
             f"{old[:12]}): {len(moved)} fine-tuned record file(s) moved aside and scored again")
    atomic_write_json(record, {"sha256": sha, "adapter": str(adapter_dir)})
    return moved

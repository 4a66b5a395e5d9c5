"""protege runs pack / unpack: stages move between machines whole, damaged carries are refused, a partial
evaluation resumes from the carried log.

    pytest tests/test_runs_carry.py -q
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from protege.errors import ConfigError
from protege.evaluate.resumable import evaluate_in_chunks
from protege.runs_carry import INDEX, pack, unpack
from protege.store import JsonlLog, StageDir
from protege.tasks.spec import Example


def _stage(root: Path, key: str, records: int, complete: bool) -> StageDir:
    stage = StageDir(root, "trec6", "model-eval", key)
    stage.start({"model": "m"})
    JsonlLog(stage / "samples.jsonl").append([{"id": f"i{n}", "ok": True} for n in range(records)])
    if complete:
        stage.finish({"value": 1.0})
    return stage


def test_round_trip_restores_a_partial_stage_that_resumes(tmp_path):
    here, there, carry = tmp_path / "here", tmp_path / "there", tmp_path / "carry"
    stage = _stage(here, "aaa", records=2, complete=False)
    index = pack([stage.path], carry, here)
    assert index["stages"]["trec6/model-eval-aaa"]["complete"] is False
    assert unpack(carry, there)["restored"] == ["trec6/model-eval-aaa"]
    log = JsonlLog(there / "trec6" / "model-eval-aaa" / "samples.jsonl")
    scored = []
    items = [Example(id=f"i{n}", text="x") for n in range(5)]
    evaluate_in_chunks(items, log, 2, lambda batch: scored.extend(batch) or [{"id": it.id} for it in batch],
                       progress=False)
    assert [it.id for it in scored] == ["i2", "i3", "i4"]  # the two carried items are not scored again


def test_pack_closes_an_open_attempt_so_file_times_need_not_survive_the_move(tmp_path):
    from protege.store import ATTEMPTS, read_json

    here, carry = tmp_path / "here", tmp_path / "carry"
    stage = _stage(here, "open", records=2, complete=False)  # its process is still running, or was killed
    pack([stage.path], carry, here)
    carried = read_json(carry / "trec6" / "model-eval-open" / ATTEMPTS)
    assert len(carried) == 1 and carried[0]["ended"] == "last write" and carried[0]["seconds"] >= 0
    assert "seconds" not in read_json(stage / ATTEMPTS)[0]  # the stage's own record is left as it is
    unpack(carry, tmp_path / "there")
    assert StageDir(tmp_path / "there", "trec6", "model-eval", "open").earlier_attempts()[0] == 1


def test_complete_local_stage_is_kept_and_partial_one_replaced_by_complete_carry(tmp_path):
    here, there, carry = tmp_path / "here", tmp_path / "there", tmp_path / "carry"
    pack([_stage(here, "done", 3, complete=True).path, _stage(here, "half", 1, complete=False).path], carry, here)
    _stage(there, "done", 1, complete=True)           # finished here with other content: kept
    _stage(there, "half", 2, complete=False)          # partial in both: kept
    out = unpack(carry, there)
    assert out["kept"] == ["trec6/model-eval-done"] and out["kept_partial"] == ["trec6/model-eval-half"]
    assert len(JsonlLog(there / "trec6" / "model-eval-done" / "samples.jsonl").read()) == 1
    pack([_stage(here, "half", 4, complete=True).path], carry, here)  # packed again, now complete
    assert unpack(carry, there)["replaced"] == ["trec6/model-eval-half"]
    restored = there / "trec6" / "model-eval-half"
    assert (restored / "MANIFEST.json").exists() and len(JsonlLog(restored / "samples.jsonl").read()) == 4
    assert not list((there / "trec6").glob(".*"))  # no temp folder left behind


def _shared_row(root: Path, key: str, records: int, finished: bool) -> Path:
    """A shared eval row's folder (evaluate/shared_rows.py): no manifest; memory.json written when finished."""
    row = root / "mbpp" / f"eval-row-{key}"
    JsonlLog(row / "samples.jsonl").append([{"id": f"i{n}", "ok": True} for n in range(records)])
    if finished:
        (row / "memory.json").write_text("{}")
    return row


def test_a_finished_shared_row_counts_as_complete_and_replaces_a_partial_one(tmp_path):
    here, there, carry = tmp_path / "here", tmp_path / "there", tmp_path / "carry"
    index = pack([_shared_row(here, "done", 3, finished=True), _shared_row(here, "half", 1, finished=False)],
                 carry, here)
    assert index["stages"]["mbpp/eval-row-done"]["complete"] is True
    assert index["stages"]["mbpp/eval-row-half"]["complete"] is False
    _shared_row(there, "done", 1, finished=False)  # partial here, finished in the carry: replaced
    _shared_row(there, "half", 2, finished=True)   # finished here: kept
    out = unpack(carry, there)
    assert out["replaced"] == ["mbpp/eval-row-done"] and out["kept"] == ["mbpp/eval-row-half"]
    assert len(JsonlLog(there / "mbpp" / "eval-row-done" / "samples.jsonl").read()) == 3


def test_big_file_left_out_and_its_stage_carried_as_partial(tmp_path):
    here, carry = tmp_path / "here", tmp_path / "carry"
    stage = _stage(here, "big", 1, complete=False)
    (stage / "adapter.safetensors").write_bytes(b"\0" * 3 * 2**20)
    stage.finish()
    index = pack([stage.path], carry, here, max_mb=1)
    assert index["left_out"] and "adapter.safetensors" in index["left_out"][0]
    facts = index["stages"]["trec6/model-eval-big"]
    assert facts["complete"] is False and "MANIFEST.json" not in facts["files"]
    unpack(carry, tmp_path / "there")
    assert not (tmp_path / "there" / "trec6" / "model-eval-big" / "MANIFEST.json").exists()


def test_damaged_carry_is_refused_before_anything_is_written(tmp_path):
    here, there, carry = tmp_path / "here", tmp_path / "there", tmp_path / "carry"
    pack([_stage(here, "a", 2, complete=True).path, _stage(here, "b", 2, complete=True).path], carry, here)
    with (carry / "trec6" / "model-eval-b" / "samples.jsonl").open("a") as f:
        f.write('{"id": "forged"}\n')
    with pytest.raises(ConfigError, match="model-eval-b/samples.jsonl: its size or sha256 differs"):
        unpack(carry, there)
    assert not there.exists()
    with pytest.raises(ConfigError, match="no CARRIED.json"):
        unpack(tmp_path, there)


def test_pack_refuses_a_folder_that_is_not_a_stage_under_the_runs_root(tmp_path):
    here = tmp_path / "here"
    stage = _stage(here, "a", 1, complete=True)
    with pytest.raises(ConfigError, match="not under the runs root"):
        pack([stage.path], tmp_path / "carry", tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a stage folder"):
        pack([here / "trec6"], tmp_path / "carry", here)


def test_cli_pack_and_unpack(tmp_path):
    from protege.cli import app

    here, carry = tmp_path / "here", tmp_path / "carry"
    stage = _stage(here, "c", 2, complete=True)
    runner = CliRunner()
    packed = runner.invoke(app, ["runs", "pack", str(stage.path), "--to", str(carry), "--runs-dir", str(here)])
    assert packed.exit_code == 0, packed.output
    assert "trec6/model-eval-c: 4 files, complete" in packed.output  # config, attempts, samples, manifest
    assert json.loads((carry / INDEX).read_text())["stages"]["trec6/model-eval-c"]["complete"]
    unpacked = runner.invoke(app, ["runs", "unpack", str(carry), "--runs-dir", str(tmp_path / "there")])
    assert unpacked.exit_code == 0 and "restored" in unpacked.output, unpacked.output

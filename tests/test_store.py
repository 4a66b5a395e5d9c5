"""Run-directory primitives: keys, atomic writes and the append-only log that survives a kill."""
import pytest

from protege.store import JsonlLog, StageDir, content_key


def test_content_key_ignores_dict_order():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_partial_last_line_is_ignored_then_overwritten(tmp_path):
    log = JsonlLog(tmp_path / "s.jsonl")
    log.append([{"id": "a"}, {"id": "b"}])
    with log.path.open("a") as f:
        f.write('{"id": "c", "tex')  # a write cut off by a kill
    assert [r["id"] for r in log.read()] == ["a", "b"]
    log.append([{"id": "c"}])
    assert [r["id"] for r in log.read()] == ["a", "b", "c"]
    assert log.path.read_text().count("\n") == 3


@pytest.mark.parametrize("tail", ['{"id": "c", "tex', "x" * 200_000, ""], ids=["short", "longer-than-a-block", "none"])
@pytest.mark.parametrize("whole_lines", [0, 2])
def test_a_cut_tail_of_any_length_is_dropped_reading_only_the_end(tmp_path, tail, whole_lines, monkeypatch):
    log = JsonlLog(tmp_path / "s.jsonl")
    if whole_lines:
        log.append([{"id": "a", "pad": "y" * 300_000}, {"id": "b"}])
    with log.path.open("a") as f:
        f.write(tail)
    size = log.path.stat().st_size
    reads = []
    real_open = type(log.path).open

    def counting_open(path, *args, **kwargs):  # how many bytes the append reads back
        handle = real_open(path, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda n=-1: reads.append(n) or real_read(n)
        return handle

    monkeypatch.setattr(type(log.path), "open", counting_open)
    log.append([{"id": "c"}])
    monkeypatch.undo()
    assert [r["id"] for r in log.read()] == ["a", "b", "c"][2 - whole_lines:]
    assert all(0 <= n <= 1 << 16 for n in reads) and sum(reads) <= len(tail) + (1 << 16) + 1
    if whole_lines and len(tail) < 1 << 16:
        assert sum(reads) < size / 2  # the 300 kB of whole lines before the tail were not read


def test_manifest_lists_files_and_marks_complete(tmp_path):
    stage = StageDir(tmp_path, "task", "generate", "abc")
    stage.start({"x": 1})
    assert not stage.complete
    (stage / "samples.jsonl").write_text('{"id": 1}\n')
    stage.finish({"records": 1})
    assert stage.complete
    import json

    manifest = json.loads((stage / "MANIFEST.json").read_text())
    assert set(manifest["files"]) == {"config.yaml", "attempts.json", "samples.jsonl"}


def test_a_corrupt_line_in_the_middle_of_a_log_names_the_line_and_the_way_out(tmp_path):
    from protege.errors import ConfigError
    from protege.store import JsonlLog

    log = JsonlLog(tmp_path / "stage" / "samples.jsonl")
    log.append([{"id": "a"}, {"id": "b"}])
    lines = log.path.read_text().splitlines()
    log.path.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n")
    with pytest.raises(ConfigError) as err:
        log.read()
    assert "line 2: not a JSON record" in str(err.value) and "delete that line" in str(err.value)


def test_a_killed_attempt_is_closed_at_the_stage_last_write_when_the_stage_resumes(tmp_path):
    import os

    from protege.store import ATTEMPTS, closed_attempts, read_json

    stage = StageDir(tmp_path, "t", "generate", "k")
    stage.start({"a": 1})
    began = read_json(stage / ATTEMPTS)[0]["began"]
    JsonlLog(stage / "samples.jsonl").append([{"id": 1}])
    for p in stage.path.iterdir():  # the killed process wrote its last record 50 s after it began
        os.utime(p, (began + 50, began + (50 if p.name == "samples.jsonl" else 1)))
    assert closed_attempts(stage.path)[0]["seconds"] == 50.0
    assert stage.earlier_attempts() == (0, 0)  # not closed on disk until the stage starts again
    stage.start({"a": 1})
    attempts = read_json(stage / ATTEMPTS)
    assert len(attempts) == 2 and attempts[0]["seconds"] == 50.0 and "seconds" not in attempts[1]
    assert stage.earlier_attempts() == (1, 50.0)


def test_two_writers_of_one_path_at_once_each_leave_a_whole_file(tmp_path, monkeypatch):
    """The processes of a data-parallel stage cache the same teacher targets under one name. Here a second write
    of the path lands while the first is saving (torch.save patched to run it in between): with one shared
    temporary name the second renamed the first's file away and the first's rename failed (FileNotFoundError)."""
    import torch

    from protege import store

    path, save, nested = tmp_path / "targets.pt", torch.save, []

    def save_with_another_writer_between(obj, f, *args, **kwargs):
        save(obj, f, *args, **kwargs)
        if not nested:
            nested.append(True)
            store.atomic_torch_save({"writer": 2}, path)

    monkeypatch.setattr(torch, "save", save_with_another_writer_between)
    store.atomic_torch_save({"writer": 1}, path)
    assert torch.load(path) == {"writer": 1}  # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["targets.pt"]  # no temporary file left behind

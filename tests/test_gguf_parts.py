"""Chunked GGUF teachers: assembled once from their packages, checked by sha256, refused when corrupt."""
import hashlib
import os

import pytest

from protege.models import gguf_parts
from protege.models.gguf_parts import ChecksumMismatch, PartedGGUF, PartsMissing, assemble
from protege.models.resolve import ModelNotFound, model_dir

CHUNKS = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 33, b"tail" * 99]


@pytest.fixture()
def packages(tmp_path, monkeypatch):
    """Three installed chunk packages (fakechunk_part1..3), as pip lays them out, and their spec."""
    site = tmp_path / "site"
    for i, data in enumerate(CHUNKS, 1):
        (site / f"fakechunk_part{i}" / "data").mkdir(parents=True)
        (site / f"fakechunk_part{i}" / "__init__.py").write_text("")
        (site / f"fakechunk_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(CHUNKS)
    spec = PartedGGUF("fake.gguf", ("fakechunk_part1", "fakechunk_part2", "fakechunk_part3"), len(whole),
                      hashlib.sha256(whole).hexdigest(), "make teachers")
    return site, spec


def test_the_chunks_assemble_into_the_checked_file(packages, tmp_path):
    _, spec = packages
    path = assemble(spec, tmp_path / "cache")
    assert path.read_bytes() == b"".join(CHUNKS)
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]


def test_the_assembled_file_is_never_written_twice(packages, tmp_path, monkeypatch):
    _, spec = packages
    path = assemble(spec, tmp_path / "cache")
    before = (path.stat().st_ino, path.stat().st_mtime_ns)

    def no_reading(_spec):
        raise AssertionError("the chunks were read again")

    monkeypatch.setattr(gguf_parts, "part_files", no_reading)
    assert assemble(spec, tmp_path / "cache") == path
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == before


def test_a_corrupt_chunk_is_refused_and_leaves_nothing_behind(packages, tmp_path):
    site, spec = packages
    chunk = site / "fakechunk_part2" / "data" / "part02.bin"
    data = bytearray(chunk.read_bytes())
    data[100] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch) as e:
        assemble(spec, tmp_path / "cache")
    message = str(e.value)
    assert spec.sha256 in message and "fakechunk-part1 fakechunk-part2 fakechunk-part3" in message
    assert "--force-reinstall" in message
    assert list((tmp_path / "cache").iterdir()) == []  # no partial or unchecked file


def test_a_file_changed_after_its_check_is_checked_again(packages, tmp_path):
    _, spec = packages
    path = assemble(spec, tmp_path / "cache")
    path.write_bytes(b"edited")
    os.utime(path, ns=(1, 1))
    assert assemble(spec, tmp_path / "cache").read_bytes() == b"".join(CHUNKS)


def test_missing_packages_are_named_with_the_command_that_installs_them(tmp_path, monkeypatch):
    spec = PartedGGUF("none.gguf", ("absent_chunk_part1", "absent_chunk_part2"), 1, "0" * 64, "make teachers")
    with pytest.raises(PartsMissing, match="absent-chunk-part1, absent-chunk-part2: run `make teachers`"):
        assemble(spec, tmp_path)
    monkeypatch.setattr(gguf_parts, "QWEN_CODER_05B", spec)
    monkeypatch.setenv("PROTEGE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFound, match="qwen2.5-coder-0.5b-instruct.*make teachers"):
        model_dir("bundled:qwen2.5-coder-0.5b-instruct")

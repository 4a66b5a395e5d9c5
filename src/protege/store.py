"""Run directories: content-hash keys, atomic writes, append-only JSONL, manifests, resume.

Layout of one stage (see docs/architecture.md):

    runs/<task>/<stage>-<key>/config.yaml     resolved config of this stage
                              samples.jsonl   append-only records keyed by id
                              attempts.json   one record per process that worked on the stage
                              MANIFEST.json   written last: the stage is complete

A stage whose MANIFEST.json exists is reused; one without it resumes from what its JSONL already holds.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import time as _time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

# The files stages write, by one name each (a stage's folder, see the layout above and docs/architecture.md)
MANIFEST = "MANIFEST.json"  # written last: the stage is complete
SAMPLES = "samples.jsonl"  # generate: the teacher's items; eval: per-item records
ANSWERS = "answers.jsonl"  # answers: the re-answered items
PREFERENCES = "preferences.jsonl"  # train (dpo): the judged answers and their pairs
TRAIN_LOG = "train_log.jsonl"  # train: one record per optimizer step
RESULTS = "results.json"  # eval: every row's metrics, comparisons, forgetting, provenance
REPORT_MD = "report.md"  # report
ATTEMPTS = "attempts.json"  # every stage: one record per process that worked on it (began, seconds)
REPORT_HTML = "report.html"  # the same report as one page, plots embedded


def content_key(obj: Any, length: int = 12) -> str:
    """A short stable hash of any JSON-serialisable value (dict key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def _whole_or_nothing(path: Path) -> Iterator[Path]:
    """A temporary file of this call's own beside `path` to write; renamed over `path` when the block ends, removed
    if it raises. Readers see the old or the new file, a kill leaves no part of one, and writers of one path at once
    (the processes of a data-parallel stage caching the same teacher targets) each rename a whole file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers see the old or the new file."""
    with _whole_or_nothing(path) as tmp, tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_marked_section(path: Path, start: str, end: str, text: str, before: str | None = None) -> None:
    """Put `text` between the marker lines `start` and `end` in a Markdown file, keeping everything outside them:
    replaced where the markers are; where they are not, inserted just before the line `before` when it is given
    and in the file, else appended after the file's text (a new file is the block alone). Nothing a person wrote
    outside the markers is overwritten."""
    block = f"{start}\n{text.rstrip()}\n{end}"
    old = Path(path).read_text() if Path(path).exists() else ""
    if start in old and end in old.split(start, 1)[1]:
        head, rest = old.split(start, 1)
        atomic_write_text(path, head + block + rest.split(end, 1)[1])
    elif before and before in old:
        head, rest = old.split(before, 1)
        atomic_write_text(path, head + block + "\n\n" + before + rest)
    elif old.strip():
        atomic_write_text(path, old.rstrip() + "\n\n" + block + "\n")
    else:
        atomic_write_text(path, block + "\n")


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through _whole_or_nothing: a kill, or another process saving the same path, leaves a whole file."""
    import torch

    with _whole_or_nothing(path) as tmp:
        torch.save(obj, tmp)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


class JsonlLog:
    """Append-only JSONL keyed by `id`. A line cut short by a kill is ignored on read and overwritten."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records, seen = [], set()
        with self.path.open() as f:
            for number, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    break  # partial final line from an interrupted write
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    from protege.errors import ConfigError

                    raise ConfigError(str(self.path), [
                        f"line {number}: not a JSON record (the file was edited, or the disk damaged it); delete "
                        f"that line to keep every other record (it is then redone), or remove {self.path.parent} to "
                        "redo the whole stage"]) from None
                if rec.get("id") in seen:
                    continue
                seen.add(rec.get("id"))
                records.append(rec)
        return records

    def ids(self) -> set:
        return {r.get("id") for r in self.read()}

    def _truncate_partial_tail(self, block: int = 1 << 16) -> None:
        """Drop a last line cut short by a kill. Reads from the end only as far back as its last newline, so an
        append costs the same on a 10-line log and a 10-million-line one."""
        if not self.path.exists():
            return
        with self.path.open("rb+") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return
            start = end
            while start > 0:
                start = max(0, start - block)
                f.seek(start)
                newline = f.read(min(block, end - start)).rfind(b"\n")
                if newline >= 0:
                    f.truncate(start + newline + 1)
                    return
            f.truncate(0)  # not one whole line yet

    def append(self, records: Iterable[dict]) -> None:
        """Append whole lines and fsync, so a finished record survives a kill."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_partial_tail()
        with self.path.open("a") as f:
            for rec in records:
                f.write(json.dumps(rec, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def __iter__(self) -> Iterator[dict]:
        return iter(self.read())


class StageDir:
    """One stage's run directory: `root/<task>/<stage>-<key>`."""

    def __init__(self, root: Path, task: str, stage: str, key: str):
        self.stage = stage
        self.key = key
        self.path = Path(root) / task / f"{stage}-{key}"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def complete(self) -> bool:
        return (self.path / MANIFEST).exists()

    def start(self, config: dict) -> None:
        """Begin (or resume) the stage: its config is written and this process's attempt recorded."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / ATTEMPTS, closed_attempts(self.path) + [{"began": round(_time.time(), 3)}])
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def earlier_attempts(self) -> tuple[int, float]:
        """(processes that worked on the stage before the current one, their seconds in all)."""
        attempts = read_json(self.path / ATTEMPTS) if (self.path / ATTEMPTS).exists() else []
        closed = [a for a in attempts if "seconds" in a]
        return len(closed), round(sum(a["seconds"] for a in closed), 1)

    def finish(self, summary: dict | None = None) -> None:
        """Write the manifest last: the list of files with sizes and hashes, and when the stage ended."""
        files = {}
        for p in sorted(self.path.rglob("*")):
            if p.is_file() and p.name != MANIFEST and not p.name.startswith("."):
                files[str(p.relative_to(self.path))] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
        atomic_write_json(
            self.path / MANIFEST,
            {"stage": self.stage, "key": self.key, "finished": now_iso(), "files": files, "summary": summary or {}},
        )


def closed_attempts(stage: Path) -> list[dict]:
    """The stage's attempts (StageDir.start), an open last one closed as lasting until the stage's last write:
    its process was killed, or is still working when the stage is packed (runs_carry.py)."""
    attempts = read_json(stage / ATTEMPTS) if (stage / ATTEMPTS).exists() else []
    if attempts and "seconds" not in attempts[-1]:
        last_write = max((p.stat().st_mtime for p in stage.rglob("*") if p.is_file() and p.name != ATTEMPTS),
                         default=attempts[-1]["began"])
        attempts[-1].update(seconds=round(max(0.0, last_write - attempts[-1]["began"]), 1), ended="last write")
    return attempts


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

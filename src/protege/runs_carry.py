"""Carry run directories to another machine: finished and half-finished stages, so work resumes there.

    protege runs pack runs/mbpp/model-eval-1a2b3c4d5e6f --to carry/       # copy the stage folder(s) into carry/
    protege runs unpack carry/                                             # put them back under runs/

A stage folder is already resumable where it is (its JSONL logs skip finished items); this moves it. `pack`
copies each named stage folder under `--to`, at the same path it has under the runs root, and writes
`CARRIED.json` there: every file's size and sha256, and whether its stage was complete. Files over `max_mb`
(model weights, merged folders) are left out and listed, since they are big and usually rebuilt from their stage's
inputs; such a stage is carried without its manifest, so it counts as partial and redoes its work. `unpack` checks every file against `CARRIED.json` first (a damaged carry is refused before anything is
written), then decides stage by stage, never file by file, so a stage is never half local and half carried:

- not here: restored;
- complete here: kept;
- complete in the carry, partial here: replaced by the carried one (it holds all the work the partial one does);
- partial in both: kept here (say so); remove the local folder to take the carried one.

A shared evaluation row (`eval-row-<key>`, evaluate/shared_rows.py) is finished when its memory.json is there,
as a stage is when its MANIFEST.json is; both count as complete here.

A stage's folder name holds the content key of what determines it, precision included (models/precision.py):
unpacked on a machine whose automatic precision differs, the stage is not picked up; pass the precision it was
made with (`protege --precision fp32 ...`) to continue it there.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from protege.errors import ConfigError
from protege.store import (ATTEMPTS, MANIFEST, atomic_write_json, closed_attempts, file_sha256, now_iso,
                           read_json)

INDEX = "CARRIED.json"


def _finished_marker(rel: Path) -> str:
    """The file whose presence says the folder's work is done: a shared eval row's memory.json, else the manifest."""
    from protege.evaluate.shared_rows import FINISHED, PREFIX

    return FINISHED if Path(rel).name.startswith(PREFIX) else MANIFEST


def _stage_relative(stage: Path, runs_root: Path) -> Path:
    stage, runs_root = Path(stage).resolve(), Path(runs_root).resolve()
    if not stage.is_dir():
        raise ConfigError(str(stage), ["not a folder: name a stage folder such as runs/<task>/<stage>-<key>"])
    try:
        rel = stage.relative_to(runs_root)
    except ValueError:
        raise ConfigError(str(stage), [f"not under the runs root {runs_root}: name a stage folder inside it, or "
                                       "pass --runs-dir"]) from None
    if len(rel.parts) != 2:
        raise ConfigError(str(stage), ["not a stage folder: give runs/<task>/<stage>-<key> (one per argument)"])
    return rel


def pack(stages: list[Path], to: Path, runs_root: Path = Path("runs"), max_mb: float = 20.0) -> dict:
    """Copy the stage folders under `to`; returns {"stages": {rel: {"complete", "files"}}, "left_out": [...]}.
    A stage packed again replaces its earlier copy (the carry is a snapshot of the latest state)."""
    to = Path(to)
    index_path = to / INDEX
    index = read_json(index_path) if index_path.exists() else {"stages": {}, "left_out": []}
    for stage in stages:
        rel = _stage_relative(stage, runs_root)
        src = Path(runs_root) / rel
        dest = to / rel
        if dest.exists():
            shutil.rmtree(dest)
        paths = [p for p in sorted(src.rglob("*")) if p.is_file() and not p.name.startswith(".")]  # no temp files
        left_out = [f"{rel / p.relative_to(src)} ({p.stat().st_size / 2**20:.0f} MB > {max_mb:g} MB)"
                    for p in paths if p.stat().st_size > max_mb * 2**20]
        files, marker = {}, _finished_marker(rel)
        for p in paths:
            name = str(p.relative_to(src))
            if p.stat().st_size > max_mb * 2**20 or (left_out and name == marker):
                continue  # without its manifest, a stage missing a file is partial there and redoes its work
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            if name == ATTEMPTS:  # closed here: file times do not survive git, the last write is judged now
                atomic_write_json(dest / name, closed_attempts(src))
            else:
                shutil.copy2(p, dest / name)
            files[name] = {"bytes": (dest / name).stat().st_size, "sha256": file_sha256(dest / name)}
        index["stages"][str(rel)] = {"complete": marker in files, "packed": now_iso(),
                                     "files": files}
        index["left_out"] = [x for x in index["left_out"] if not x.startswith(f"{rel}/")] + left_out
    to.mkdir(parents=True, exist_ok=True)
    atomic_write_json(index_path, index)
    return index


def _check(carry: Path, index: dict) -> None:
    problems = []
    for rel, stage in index["stages"].items():
        for name, facts in stage["files"].items():
            p = carry / rel / name
            if not p.is_file():
                problems.append(f"{rel}/{name}: missing")
            elif p.stat().st_size != facts["bytes"] or file_sha256(p) != facts["sha256"]:
                problems.append(f"{rel}/{name}: its size or sha256 differs from {INDEX}")
    if problems:
        raise ConfigError(str(carry / INDEX), problems + ["nothing was unpacked; pack the stages again on the "
                                                          "machine that made them"])


def unpack(carry: Path, runs_root: Path = Path("runs")) -> dict[str, list[str]]:
    """Restore the carried stages under `runs_root`; returns their paths under "restored", "replaced", "kept"
    (complete here) and "kept_partial" (partial in both)."""
    carry = Path(carry)
    if not (carry / INDEX).exists():
        raise ConfigError(str(carry), [f"no {INDEX} here: give the folder `protege runs pack --to` wrote"])
    index = read_json(carry / INDEX)
    _check(carry, index)
    outcome: dict[str, list[str]] = {"restored": [], "replaced": [], "kept": [], "kept_partial": []}
    for rel, stage in index["stages"].items():
        local = Path(runs_root) / rel
        if local.exists() and (local / _finished_marker(Path(rel))).exists():
            outcome["kept"].append(rel)
            continue
        if local.exists() and not stage["complete"]:
            outcome["kept_partial"].append(rel)
            continue
        outcome["replaced" if local.exists() else "restored"].append(rel)
        tmp = local.with_name(f".{local.name}.unpacking")
        shutil.rmtree(tmp, ignore_errors=True)
        for name in stage["files"]:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(carry / rel / name, tmp / name)
        if local.exists():
            shutil.rmtree(local)
        tmp.rename(local)  # the stage appears whole or not at all
    return outcome

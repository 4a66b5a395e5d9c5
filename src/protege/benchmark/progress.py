"""Where a bench stands, read from its run folders without running anything: each (task, teacher) data job's
generate / answers / curate stages and each student's capacity stage on that data, then each cell's train / eval /
report, as done, begun, to do or not needed, with the wall seconds every process spent on them (the stages'
attempts records, so time spent on other machines and in earlier sessions counts too); a begun generate or answers
stage also says how many of its items are written and, at the rate so far, about how long the rest will take.

    protege --precision fp32 bench configs/bench-real-teachers.yaml --status      # the two tables and the totals
    protege runs pack $(protege --precision fp32 bench configs/bench-real-teachers.yaml --stage-dirs) \\
        --to carry/real-teachers                                                  # what to move before the machine goes

Stage folders are keyed by the precision, so ask with the precision the bench runs in. "Not needed": a later stage
of the same chain is finished, so the run reads that one and never this (an evaluation carried without its
training stage). Rows an eval stage adopts from elsewhere (a `protege baselines` card row) were computed outside
the bench and their time is not in its total.

    from protege.benchmark.progress import bench_progress, render_progress, stage_dirs
    progress = bench_progress(build_cells(load_bench_config(path)))
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from protege.benchmark.capacity import capacity_stage
from protege.benchmark.matrix import Cell, data_jobs, short_names
from protege.pipeline import STAGES
from protege.store import ANSWERS, SAMPLES, JsonlLog, StageDir, closed_attempts

DONE, BEGUN, TODO, NOT_NEEDED = "done", "begun", "to do", "not needed"
ITEM_FILES = {"generate": SAMPLES, "answers": ANSWERS}  # the stages that write one record per item, resumably


@dataclass(frozen=True)
class StageState:
    stage: str
    path: Path
    state: str  # DONE, BEGUN, TODO or NOT_NEEDED
    seconds: float  # every process's wall time on the folder (0 where it does not exist)
    items: tuple[int, int] | None = None  # (written, planned) of a begun generate or answers stage


@dataclass(frozen=True)
class ProgressRow:
    labels: list[str]  # task, teacher (a data job); task, teacher, student, method (a cell)
    stages: list[StageState]


def _state(stage: StageDir, later_done: bool = False, name: str | None = None) -> StageState:
    seconds = sum(a["seconds"] for a in closed_attempts(stage.path)) if stage.path.is_dir() else 0.0
    state = (DONE if stage.complete else NOT_NEEDED if later_done else BEGUN if stage.path.is_dir() else TODO)
    return StageState(name or stage.stage, stage.path, state, round(seconds, 1))


def chain_states(chain: list[StageDir]) -> list[StageState]:
    """The states of stages that each read the one before: an unfinished one before a finished one is not needed.
    A begun generate or answers stage also says how many of its items are written."""
    out = []
    for i, stage in enumerate(chain):
        state = _state(stage, any(later.complete for later in chain[i + 1:]))
        if state.state == BEGUN and stage.stage in ITEM_FILES:
            state = replace(state, items=_items(stage, chain[i - 1] if i else None))
        out.append(state)
    return out


def _items(stage: StageDir, before: StageDir | None) -> tuple[int, int] | None:
    """(written, planned): a generate stage's records against its generate.num_examples; an answers stage's
    against the well-formed items of the generate stage it answers. None when the plan cannot be read."""
    written = len(JsonlLog(stage / ITEM_FILES[stage.stage]).read())
    if stage.stage == "generate":
        config = stage / "config.yaml"
        planned = (yaml.safe_load(config.read_text()) or {}).get("generate", {}).get("num_examples") \
            if config.exists() else None
    else:
        planned = sum(r.get("ok", True) for r in JsonlLog(before / SAMPLES).read()) if before else None
    return (written, planned) if isinstance(planned, int) and planned > 0 else None


def _data_chain(cell: Cell) -> list[StageDir]:
    """generate, answers, curate; without answers where the pipeline keys it as a pass-through (generate's key)."""
    generate, answers, curate = (cell.stages[n] for n in ("generate", "answers", "curate"))
    return [generate, curate] if answers.key == generate.key else [generate, answers, curate]


def bench_progress(cells: list[Cell]) -> dict[str, list[ProgressRow]]:
    """{"data": one row per (task, teacher) data job, "cells": one row per cell}, in the bench's order."""
    students = short_names(list(dict.fromkeys(c.student for c in cells)))
    teachers = short_names(list(dict.fromkeys(c.teacher for c in cells)))
    data = []
    for job in data_jobs(cells):
        first = next(c for c in cells if c.stages["curate"].path == job.curate_dir)
        stages = chain_states(_data_chain(first)) + [
            _state(capacity_stage(cfg, first.stages["curate"]), name=f"capacity {students[s]}")
            for s, cfg in job.students.items()]
        data.append(ProgressRow([job.task_name, teachers[job.teacher]], stages))
    rows = [ProgressRow([c.task_name, teachers[c.teacher], students[c.student], c.method],
                        chain_states([c.stages[n] for n in ("train", "eval", "report")])) for c in cells]
    return {"data": data, "cells": rows}


def _cell(s: StageState) -> str:
    text = s.state + (f", {s.seconds:,.0f} s" if s.seconds else "")
    if s.items:
        written, planned = s.items
        text += f", {written} of {planned} items"
        if 0 < written < planned and s.seconds:
            text += f", about {s.seconds / written * (planned - written) / 3600:.1f} h left at this rate"
    return text


def _table(labels: list[str], rows: list[ProgressRow]) -> list[str]:
    """A Markdown table; a stage only some rows have (answers) gets its column, in chain order, blank elsewhere."""
    heads = list(dict.fromkeys(s.stage for r in rows for s in r.stages))
    heads.sort(key=lambda h: STAGES.index(h) if h in STAGES else len(STAGES))  # stable: capacities keep their order
    lines = ["| " + " | ".join(labels + heads) + " |", "|---" * (len(labels) + len(heads)) + "|"]
    for r in rows:
        by = {s.stage: _cell(s) for s in r.stages}
        lines.append("| " + " | ".join(r.labels + [by.get(h, "") for h in heads]) + " |")
    return lines


def _unique(progress: dict[str, list[ProgressRow]]) -> dict[Path, StageState]:
    """Every stage once (cells of one data job share its stages)."""
    return {s.path: s for rows in progress.values() for r in rows for s in r.stages}


def render_progress(progress: dict[str, list[ProgressRow]]) -> str:
    stages = _unique(progress).values()
    counts = {k: sum(s.state == k for s in stages) for k in (DONE, BEGUN, TODO, NOT_NEEDED)}
    spent = sum(s.seconds for s in stages)
    finished = sum(r.stages[-1].state == DONE for r in progress["cells"])
    lines = ["Data (one job per task and teacher):", "", *_table(["task", "teacher"], progress["data"]), "",
             "Cells:", "", *_table(["task", "teacher", "student", "method"], progress["cells"]), "",
             f"{finished} of {len(progress['cells'])} cells finished; stages: "
             + ", ".join(f"{n} {k}" for k, n in counts.items()) + "; "
             f"{spent:,.0f} s ({spent / 3600:.1f} h) spent on them so far, every process's wall time "
             "(a stage's shared evaluation rows are counted in the stage that computed them)."]
    return "\n".join(lines) + "\n"


def stage_dirs(progress: dict[str, list[ProgressRow]]) -> list[Path]:
    """The folders worth moving to another machine: finished or begun stages (not those no run will read). The
    shared evaluation rows a begun eval stage was computing (runs/<task>/eval-row-*) are not among them: add them
    to keep that progress too (an eval stage's finished rows are copied into its own folder)."""
    return [p for p, s in _unique(progress).items() if s.state in (DONE, BEGUN)]

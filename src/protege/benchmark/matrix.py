"""The bench's cells: one run config per (task, teacher, student, method), and the data jobs they share.

    cells = build_cells(bench)        # every cell's RunConfig built and checked; all problems at once
    jobs = data_jobs(cells)           # one per (task, teacher): generate + curate + capacity of each student

A cell's config is `base`, then `per_task[task]`, then the matrix axes. Cells of one (task, teacher) share
their generate and curate run directories because stage keys chain (pipeline.py); the data jobs run them once,
before any training cell, so two parallel cells never generate the same data at the same time.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from protege.benchmark.config import BenchConfig
from protege.config import RunConfig
from protege.errors import ConfigError, pydantic_problems
from protege.store import StageDir, content_key


@dataclass
class Cell:
    task: str  # as listed in the bench config
    teacher: str
    student: str
    method: str
    cfg: RunConfig
    task_name: str = ""  # the spec's name: what tables are keyed by
    stages: dict[str, StageDir] = field(default_factory=dict)  # stage name -> run directory

    @property
    def key(self) -> str:
        """A stable file name for this cell's status record."""
        return content_key([self.task, self.teacher, self.student, self.method])

    @property
    def label(self) -> str:
        return f"{self.task_name} | teacher {self.teacher} | student {self.student} | {self.method}"


@dataclass
class DataJob:
    task_name: str
    teacher: str
    cfg: RunConfig  # a cell's config (its student and method do not matter to generate and curate)
    students: dict[str, RunConfig]  # student -> a cell config of that student, for its capacity diagnostic
    curate_dir: Path

    @property
    def key(self) -> str:
        return content_key(["data", str(self.curate_dir)])

    @property
    def label(self) -> str:
        n = len(self.students)
        return f"{self.task_name} | teacher {self.teacher} (generate, curate, capacity of {n} student{'s' * (n != 1)})"


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def short_names(models: list[str]) -> dict[str, str]:
    """Readable names for tables: `hf:/a/b/l12` -> `l12`, `openai:gpt-4o@url` -> `gpt-4o`; the full name where
    two would read the same."""
    def short(name: str) -> str:
        rest = name.split(":", 1)[-1].split("@", 1)[0].rstrip("/")
        return rest.rsplit("/", 1)[-1] or name

    shorts = {m: short(m) for m in models}
    counts = {s: list(shorts.values()).count(s) for s in shorts.values()}
    return {m: s if counts[s] == 1 else m for m, s in shorts.items()}


def cell_raw(bench: BenchConfig, task: str, task_name: str, teacher: str, student: str, method: str) -> dict:
    raw = deep_merge(bench.base, bench.per_task.get(task, bench.per_task.get(task_name, {})))
    raw = deep_merge(raw, {"task": task, "runs_dir": bench.runs_dir, "generate": {"teacher": teacher},
                           "train": {"student": student, "method": method}})
    return raw


def build_cells(bench: BenchConfig) -> list[Cell]:
    """Every cell, built and checked (run config, task spec, forgetting suite, curation) before anything runs.

    The same problem in many cells (a typo in `base`) is reported once, with how many cells it affects.
    """
    from protege.pipeline import Pipeline
    from protege.tasks.spec import load_task

    problems: dict[str, list[str]] = {}

    def problem(message: str, where: str) -> None:
        problems.setdefault(message, []).append(where)

    names: dict[str, str] = {}
    for task in bench.tasks:
        try:
            names[task] = load_task(task).name
        except ConfigError as e:
            for p in e.problems:
                problem(f"tasks: {task!r}: {e.source}: {p}", task)
    by_name: dict[str, list[str]] = {}
    for task, name in names.items():
        by_name.setdefault(name, []).append(task)
    for name, entries in by_name.items():
        if len(entries) > 1:
            problem(f"tasks: {entries} are all named {name!r}; tables are keyed by task name, give each its own",
                    name)
    for key in bench.per_task:
        if key not in bench.tasks and key not in names.values():
            problem(f"per_task.{key}: not a task of this bench; use an entry of `tasks` or its spec name "
                    f"({sorted(set(bench.tasks) | set(names.values()))})", key)
    cells = []
    for task in bench.tasks:
        if task not in names:
            continue
        for teacher in bench.teachers:
            for student in bench.students:
                for method in bench.methods:
                    where = f"{names[task]} x {teacher} x {student} x {method}"
                    raw = cell_raw(bench, task, names[task], teacher, student, method)
                    try:
                        cfg = RunConfig(**raw)
                        pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
                    except ValidationError as e:
                        for p in pydantic_problems(e):
                            problem(f"run config of a cell (from `base` and `per_task`): {p}", where)
                        continue
                    except ConfigError as e:
                        for p in e.problems:
                            problem(f"{e.source}: {p}", where)
                        continue
                    cells.append(Cell(task, teacher, student, method, cfg, names[task],
                                      dict(pipe.stages)))
    if problems:
        lines = []
        for message, wheres in problems.items():
            n = len(wheres)
            lines.append(message + ("" if n == 1 or message.startswith(("tasks", "per_task"))
                                    else f" ({n} cells, e.g. {wheres[0]})"))
        raise ConfigError("bench config", lines)
    return cells


def data_jobs(cells: list[Cell]) -> list[DataJob]:
    """One job per distinct curate directory (in practice one per task and teacher), in cell order."""
    jobs: dict[Path, DataJob] = {}
    for cell in cells:
        curate = cell.stages["curate"].path
        job = jobs.setdefault(curate, DataJob(cell.task_name, cell.teacher, cell.cfg, {}, curate))
        job.students.setdefault(cell.student, cell.cfg)
    return list(jobs.values())

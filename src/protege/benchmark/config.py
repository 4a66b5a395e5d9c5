"""Bench configuration: a matrix of tasks x teachers x students x methods, loaded from YAML.

    bench = load_bench_config("configs/bench.yaml", ["base.train.epochs=1"])

    name: small                        # the report goes to <bench_dir>/<name>/
    runs_dir: runs                     # shared with `protege run`: finished stages are reused
    tasks: [trec6, tasks/my-task.yaml] # built-in names or spec paths
    teachers: [bundled:smollm2-135m-instruct]
    students: [hf:students/l12, hf:students/l20]
    methods: [sft]                     # sft | kd | dpo | rl (train.method)
    base:                              # a partial run config applied to every cell
      generate: {num_examples: 240}
      train: {epochs: 2}
    per_task:                          # a partial run config per task (its name in `tasks`, or its spec name)
      trec6: {eval: {max_test_items: 200}}
    executor: {kind: ray, cpus_per_cell: 4, memory_gb_per_cell: 8}

Unknown keys are rejected and every problem is reported at once; each cell's run config is then built and
checked, all of them up front, by matrix.build_cells.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import ValidationError

from protege.config import MethodName, apply_override
from protege.choices import ExecutorKind
from protege.errors import ConfigError, Strict, pydantic_problems

# Set per cell by the matrix itself; a value in `base` or `per_task` would be silently overwritten.
AXES = {("task",): "tasks", ("runs_dir",): "runs_dir", ("generate", "teacher"): "teachers",
        ("train", "student"): "students", ("train", "method"): "methods"}


class ExecutorConfig(Strict):
    kind: ExecutorKind = "local"  # local: one cell after another in this process
    ray_address: Optional[str] = None  # None: start a local Ray cluster; else connect ("auto", "ray://host:10001")
    ray_num_cpus: Optional[int] = None  # size of that local cluster; None: every CPU of this machine
    cpus_per_cell: float = 1.0  # Ray resource request of each cell (and of each data job)
    memory_gb_per_cell: Optional[float] = None  # Ray memory request; None: none (Ray only counts CPUs)


class BenchConfig(Strict):
    name: str
    runs_dir: str = "runs"
    bench_dir: str = "bench"
    tasks: list[str]
    teachers: list[str]
    students: list[str]
    methods: list[MethodName] = ["sft"]
    base: dict[str, Any] = {}
    per_task: dict[str, dict[str, Any]] = {}
    executor: ExecutorConfig = ExecutorConfig()
    rank_resamples: int = 10000  # bootstrap resamples over tasks for the mean-rank intervals
    seed: int = 0

    @property
    def out_dir(self) -> Path:
        return Path(self.bench_dir) / self.name


def bench_problems(bench: BenchConfig) -> list[str]:
    """Cross-field rules pydantic's types cannot say; run configs of cells are checked in matrix.py."""
    problems = []
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", bench.name) or bench.name in (".", ".."):
        problems.append(f"name: {bench.name!r} names the report folder; use letters, digits, '_', '-' or '.'")
    for field in ("tasks", "teachers", "students", "methods"):
        values = getattr(bench, field)
        if not values:
            problems.append(f"{field}: list at least one")
        dups = sorted({v for v in values if values.count(v) > 1})
        if dups:
            problems.append(f"{field}: listed more than once: {dups}")
    for where, section in [("base", bench.base)] + [(f"per_task.{t}", s) for t, s in bench.per_task.items()]:
        for path, axis in AXES.items():
            node = section
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and path[-1] in node:
                problems.append(f"{where}.{'.'.join(path)}: set by the bench itself (its `{axis}`); remove it here")
    ex = bench.executor
    if ex.cpus_per_cell <= 0:
        problems.append(f"executor.cpus_per_cell must be positive; got {ex.cpus_per_cell}")
    if ex.memory_gb_per_cell is not None and ex.memory_gb_per_cell <= 0:
        problems.append(f"executor.memory_gb_per_cell must be positive (or null); got {ex.memory_gb_per_cell}")
    if ex.ray_num_cpus is not None and ex.ray_num_cpus < 1:
        problems.append(f"executor.ray_num_cpus must be at least 1 (or null); got {ex.ray_num_cpus}")
    if ex.ray_num_cpus is not None and ex.ray_num_cpus < ex.cpus_per_cell:
        problems.append(f"executor.cpus_per_cell ({ex.cpus_per_cell}) exceeds executor.ray_num_cpus "
                        f"({ex.ray_num_cpus}): no cell could ever be scheduled")
    if bench.rank_resamples < 1:
        problems.append(f"rank_resamples must be at least 1; got {bench.rank_resamples}")
    return problems


def parse_bench_config(raw: dict, source: str = "bench config") -> BenchConfig:
    try:
        bench = BenchConfig(**raw)
    except ValidationError as e:
        raise ConfigError(source, pydantic_problems(e)) from None
    problems = bench_problems(bench)
    if problems:
        raise ConfigError(source, problems)
    return bench


def load_bench_config(path: str | Path, overrides: list[str] = ()) -> BenchConfig:
    source = str(path)
    p = Path(path)
    if not p.exists():
        raise ConfigError(source, ["file not found; pass the path of a bench config YAML"])
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(source, [f"not valid YAML: {e}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): a bench config is a mapping (name, tasks, teachers, students, ...)"])
    for o in overrides:
        apply_override(raw, o)
    return parse_bench_config(raw, source)

"""`protege bench CONFIG.yaml`: run a matrix of tasks x teachers x students x methods, then rank and report.

    from protege.benchmark.runner import run_bench
    report_dir = run_bench("configs/bench.yaml")                  # in this process, one cell after another
    report_dir = run_bench(bench, executor="ray")                  # a local Ray cluster (executor settings)
    report_dir = run_bench(bench, executor="ray", ray_address="auto")

1. Every cell's run config is built and checked before anything runs (matrix.build_cells).
2. Data phase: one job per (task, teacher) runs generate and curate, then measures each student's
   capacity-match NLL on that data, before any cell trains (so parallel cells never generate the same data).
3. Cells: each runs its pipeline to `report`; finished cells are skipped, unfinished ones resume (the stages do
   this), and a failing cell is recorded in `status/<cell>.json` while the others go on.
4. Analysis and report are recomputed from the run directories every time: `<bench_dir>/<name>/report.md`,
   `report.html`, `plots/*.png`, `analysis.json`. An interrupted bench rerun with the same config resumes.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from protege.benchmark.analysis import analyse
from protege.benchmark.capacity import capacity_stage
from protege.benchmark.collect import collect
from protege.benchmark.config import BenchConfig, load_bench_config
from protege.benchmark.executors import make_executor
from protege.benchmark.matrix import Cell, DataJob, build_cells, data_jobs
from protege.benchmark.report import write_report
from protege.benchmark.selection import select_cells
from protege.errors import ConfigError
from protege.store import atomic_write_json, atomic_write_text, read_json


def _data_job(job: DataJob) -> dict:
    return {"kind": "data", "key": job.key, "label": job.label, "config": job.cfg.model_dump(),
            "students": {s: c.model_dump() for s, c in job.students.items()}}


def _data_done(job: DataJob, cells: list[Cell]) -> bool:
    mine = [c for c in cells if c.stages["curate"].path == job.curate_dir]
    return mine[0].stages["curate"].complete and all(capacity_stage(c.cfg, c.stages["curate"]).complete for c in mine)


def _cell_job(cell: Cell) -> dict:
    return {"kind": "cell", "key": cell.key, "label": cell.label, "config": cell.cfg.model_dump()}


def _record(status: Path, rec: dict) -> None:
    """Write a job's record to status/<key>.json, keeping the runs before it (`earlier`: their start, end and
    outcome), so a rerun that only reuses a job's stages does not erase the hours its first run took."""
    path = status / f"{rec['key']}.json"
    if path.exists():
        old = read_json(path)
        rec = {**rec, "earlier": old.get("earlier", []) + [{k: old.get(k) for k in ("started", "ended", "ok")}]}
    atomic_write_json(path, rec)


def _execute(ex, cells: list[Cell], status: Path, echo) -> None:
    """The data phase, then the cells that are not finished; every job's record goes to status/<key>.json."""
    jobs = data_jobs(cells)
    todo = [j for j in jobs if not _data_done(j, cells)]
    echo(f"[bench] {len(cells)} cells; data phase: {len(todo)} of {len(jobs)} (task, teacher) jobs to run")
    failed_data: dict[Path, str] = {}
    for rec in ex.map([_data_job(j) for j in todo]):
        _record(status, rec)
        echo(f"[bench] data {'done' if rec['ok'] else 'FAILED'}: {rec['label']}"
             + ("" if rec["ok"] else f": {rec['error']}"))
        if not rec["ok"]:
            failed_data[next(j for j in todo if j.key == rec["key"]).curate_dir] = rec["error"]
    runnable, blocked = [], 0
    for cell in cells:
        error = failed_data.get(cell.stages["curate"].path)
        if error:
            blocked += 1  # training on missing data would only fail again, or generate it twice in parallel
            _record(status, {"key": cell.key, "kind": "cell", "label": cell.label, "ok": False,
                             "error": f"data phase failed: {error}"})
        elif not cell.stages["report"].complete:
            runnable.append(cell)
    echo(f"[bench] cells: {len(runnable)} to run, {len(cells) - len(runnable) - blocked} already finished, "
         f"{blocked} blocked by a failed data job")
    for rec in ex.map([_cell_job(c) for c in runnable]):
        _record(status, rec)
        echo(f"[bench] cell {'done' if rec['ok'] else 'FAILED'}: {rec['label']}"
             + ("" if rec["ok"] else f": {rec['error']}"))


def run_bench(config: str | Path | BenchConfig, executor: str | None = None, ray_address: str | None = None,
              progress: bool = True, echo=print, run: bool = True, only: list[str] | None = None) -> Path:
    """Run (or resume) the bench and write its report; returns the report folder.

    `run=False` runs nothing and writes the report from the cells finished so far (unfinished ones are listed).
    `only` (FIELD=VALUE terms, benchmark/selection.py) runs the matching cells and their data only; the report
    still covers every finished cell.

    `executor` ("local" or "ray") and `ray_address` override the config's `executor.kind` and
    `executor.ray_address`; None keeps the config's.
    """
    bench = config if isinstance(config, BenchConfig) else load_bench_config(config)
    kind = executor or bench.executor.kind
    if kind not in ("local", "ray"):
        raise ConfigError("executor", [f"{kind!r}: choose 'local' (this process) or 'ray'"])
    address = ray_address if ray_address is not None else bench.executor.ray_address
    cells = build_cells(bench)
    chosen = select_cells(cells, only or [])
    out = bench.out_dir
    status = out / "status"
    atomic_write_text(out / "bench.yaml", yaml.safe_dump(bench.model_dump(), sort_keys=False))
    atomic_write_json(out / "cells.json", [{"key": c.key, "task": c.task_name, "teacher": c.teacher,
                                            "student": c.student, "method": c.method,
                                            **{f"{s}_dir": str(d.path) for s, d in c.stages.items()}} for c in cells])
    if not run:
        echo(f"[bench] {bench.name}: report only, from the {sum(c.stages['report'].complete for c in cells)} of "
             f"{len(cells)} cells finished")
    elif any(not c.stages["report"].complete for c in chosen) or any(not _data_done(j, chosen)
                                                                     for j in data_jobs(chosen)):
        if len(chosen) < len(cells):
            echo(f"[bench] --only: {len(chosen)} of the {len(cells)} cells")
        with make_executor(kind, address, bench.executor, progress=progress, echo=echo) as ex:
            _execute(ex, chosen, status, echo)
    else:  # everything is finished: no executor, so no Ray cluster started just to do nothing
        echo(f"[bench] {bench.name}: all {len(chosen)} {'selected ' if len(chosen) < len(cells) else ''}cells "
             "already finished")
    records = collect(cells, status)
    analysis = analyse(records, list(dict.fromkeys(c.task_name for c in cells)), bench.students, bench.teachers,
                       bench.methods, resamples=bench.rank_resamples, seed=bench.seed)
    write_report(out, bench, analysis, records)
    echo(f"[bench] report: {out / 'report.md'}")
    return out

"""Where the bench's jobs run: in this process one after another (local), or as Ray tasks (ray).

    with make_executor("ray", None, bench.executor) as ex:
        for record in ex.map(jobs):      # in completion order
            ...

A job is a plain dict (picklable for Ray): {"kind": "data" | "cell", "key", "label", "config": RunConfig dict,
"students": {student: RunConfig dict}}. `run_job` runs it and returns a record with `ok`, `error` (and
`traceback`) when it failed, and wall-clock `started`/`ended`: a failing job never stops the others.

Ray: `ray_address=None` starts a local cluster (`ray.init(num_cpus=...)`); otherwise this connects to a
running one, whose workers must have protege installed and see the same runs_dir (a shared file system).
Each job asks for `cpus_per_cell` CPUs and `memory_gb_per_cell` memory; Ray's scheduler decides what runs
at once, nothing here queues jobs itself.
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Iterable, Iterator

from protege.benchmark.config import ExecutorConfig


def _quiet(message: str) -> None:
    pass


def run_job(job: dict, progress: bool = False, echo=None) -> dict:
    """Run one data job (generate + curate, then each student's capacity diagnostic) or one cell (to report)."""
    from protege.benchmark.capacity import run_capacity
    from protege.config import RunConfig
    from protege.pipeline import Pipeline

    echo = echo or _quiet  # a Ray worker's prints would interleave across cells; its record says what happened
    started = time.time()
    record = {"key": job["key"], "kind": job["kind"], "label": job["label"], "started": started, "pid": os.getpid()}
    try:
        cfg = RunConfig(**job["config"])
        if job["kind"] == "data":
            Pipeline(cfg, progress=progress, echo=echo).run("curate")
            result = {}
            for student, student_cfg in job["students"].items():
                try:
                    result[student] = run_capacity(RunConfig(**student_cfg), progress=progress, echo=echo)
                except Exception as e:  # a diagnostic: its failure must not keep the cells from training
                    result[student] = {"error": f"{type(e).__name__}: {e}"}
                    echo(f"[capacity] {student}: FAILED: {result[student]['error']}")
        else:
            result = {"report": str(Pipeline(cfg, progress=progress, echo=echo).run("report").path)}
        return {**record, "ok": True, "result": result, "ended": time.time()}
    except Exception as e:  # a failed job is recorded and the bench goes on; KeyboardInterrupt still stops it
        return {**record, "ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(),
                "ended": time.time()}


class LocalExecutor:
    """One job after another in this process. Loaded models stay cached here for the whole bench
    (models.resolve.load_lm), so memory grows with the number of distinct students and teachers."""

    def __init__(self, progress: bool = True, echo=print):
        self.progress, self.echo = progress, echo

    def map(self, jobs: Iterable[dict]) -> Iterator[dict]:
        for job in jobs:
            yield run_job(job, self.progress, self.echo)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class RayExecutor:
    def __init__(self, settings: ExecutorConfig, address: str | None = None):
        self.settings, self.address = settings, address
        self.started_cluster = False

    def __enter__(self):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the ray executor needs Ray: pip install 'protege[ray]'") from None
        if not ray.is_initialized():
            if self.address is None:
                ray.init(num_cpus=self.settings.ray_num_cpus, include_dashboard=False)
            else:
                ray.init(address=self.address)
            self.started_cluster = True
        return self

    def __exit__(self, *exc):
        if self.started_cluster:
            import ray

            ray.shutdown()
        return False

    def map(self, jobs: Iterable[dict]) -> Iterator[dict]:
        import ray

        options = {"num_cpus": self.settings.cpus_per_cell,
                   # No automatic retry: a failed cell is reported, and rerunning the bench resumes it.
                   "max_retries": 0}
        if self.settings.memory_gb_per_cell:
            options["memory"] = int(self.settings.memory_gb_per_cell * 2**30)
        remote = ray.remote(run_job)
        pending = {remote.options(**options).remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as e:  # the worker died (out of memory, killed): the task never returned
                    yield {"key": job["key"], "kind": job["kind"], "label": job["label"], "ok": False,
                           "error": f"{type(e).__name__}: {e}", "started": None, "ended": time.time()}


def make_executor(kind: str, address: str | None, settings: ExecutorConfig, progress: bool = True, echo=print):
    if kind == "local":
        return LocalExecutor(progress, echo)
    if kind == "ray":
        return RayExecutor(settings, address)
    raise ValueError(f"executor must be 'local' or 'ray'; got {kind!r}")

"""Evaluation rows sharded over Ray workers (`executor.kind: ray`), resumable by item id.

    records = evaluate_on_ray("bundled:smollm2-135m-instruct", None, spec, items, shots, log, scoring="likelihood",
                              allow_code_execution=False, executor=cfg.executor)

Each worker is a Ray actor holding one copy of the model (the student, the teacher, or the student with a
run's adapter merged in) for the whole row. The driver sends the items not yet in the row's log in chunks,
two in flight per worker, and appends each chunk's records to the log as it comes back: a killed driver resumes
from the log, and a dead worker is restarted by Ray and its chunk retried. Every item is scored alone by the
same code as in one process (evaluate_lm), so the records are the same; their memory figures are the workers'.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

from protege.config import ExecutorSettings
from protege.ray_workers import RESTARTS, dispatch, start_ray
from protege.store import JsonlLog
from protege.tasks.spec import Example, TaskSpec


class EvalWorker:
    """One Ray actor: a model loaded once (with a LoRA adapter merged in when given), scoring chunks of items."""

    def __init__(self, model: str, adapter: str | None, precision: str | None, device: str | None):
        from protege.models.device import use_device
        from protege.models.precision import use_precision
        from protege.models.resolve import load_lm

        self.precision, self.device = precision, device
        with use_precision(precision), use_device(device):
            if adapter is None:
                self.lm = load_lm(model)
            else:
                from protege.evaluate.stage import load_finetuned

                self.lm = load_finetuned(model, Path(adapter))

    def run(self, spec: dict, items: list[dict], shots: list[dict], scoring: str,
            allow_code_execution: bool) -> list[dict]:
        from protege.evaluate.model_eval import evaluate_lm
        from protege.models.device import use_device
        from protege.models.precision import use_precision

        with tempfile.TemporaryDirectory() as scratch, use_precision(self.precision), use_device(self.device):
            return evaluate_lm(self.lm, TaskSpec(**spec), [Example(**i) for i in items], [Example(**s) for s in shots],
                               JsonlLog(Path(scratch) / "chunk.jsonl"), scoring=scoring,
                               allow_code_execution=allow_code_execution, progress=False)


def evaluate_on_ray(model: str, adapter: Path | None, spec: TaskSpec, items: Sequence[Example],
                    shots: Sequence[Example], log: JsonlLog, scoring: str, allow_code_execution: bool,
                    executor: ExecutorSettings, precision: str | None = None, device: str | None = None,
                    chunk: int = 16, progress: bool = True, desc: str = "eval", on_workers=None) -> list[dict]:
    """The row's records in item order, computed by `executor.workers` Ray actors."""
    from tqdm.auto import tqdm

    done = log.ids()
    pending = [it for it in items if it.id not in done]
    chunks = [pending[i: i + chunk] for i in range(0, len(pending), chunk)]
    if chunks:
        ray = start_ray(executor)
        actor = ray.remote(EvalWorker).options(num_cpus=executor.cpus_per_worker, max_restarts=RESTARTS,
                                               max_task_retries=RESTARTS)
        workers = [actor.remote(model, None if adapter is None else str(adapter), precision, device)
                   for _ in range(min(executor.workers, len(chunks)))]
        if on_workers is not None:
            on_workers(workers)
        spec_dump, shot_dumps = spec.model_dump(), [s.model_dump() for s in shots]
        bar = tqdm(total=len(pending), desc=f"{desc} ({len(workers)} Ray workers)", disable=not progress,
                   unit="item")

        def call(worker, part: list[Example]):
            return worker.run.remote(spec_dump, [it.model_dump() for it in part], shot_dumps, scoring,
                                     allow_code_execution)

        def done(part: list[Example], records: list[dict]) -> None:
            log.append(records)
            bar.update(len(part))

        try:
            dispatch(ray, workers, chunks, call, done, log, "chunk of items")
        finally:
            bar.close()
    by_id = {r["id"]: r for r in log.read()}
    return [by_id[it.id] for it in items]

"""The generate stage sharded over Ray workers (`executor.kind: ray` in a run config), resumable by id.

    protege run my-run.yaml executor.kind=ray executor.workers=4               # a local Ray cluster
    protege run my-run.yaml executor.kind=ray executor.address=auto            # a running one (ray start ...)

Each worker is a Ray actor holding its own copy of the teacher (a local model on the worker's device, or an
endpoint client) for the whole stage. The driver cuts the pending requests into the same batches the local
path makes (generate.batch_size, in plan order), so every batch is decoded with the same seed whichever worker
takes it, and appends each finished batch to the stage's samples.jsonl, keyed by id: a killed driver resumes
from what the log holds, and a worker that dies is restarted by Ray and its batch retried
(`max_restarts`/`max_task_retries`), so the records come out with the same ids, once each. A teacher endpoint
with a money or token budget stays on the local path: a budget cannot be split across workers honestly.
"""
from __future__ import annotations

import os

from protege.config import ExecutorSettings, GenerateConfig
from protege.ray_workers import RESTARTS, dispatch, start_ray
from protege.store import SAMPLES, JsonlLog, StageDir
from protege.tasks.spec import TaskSpec

class GenerateWorker:
    """One Ray actor: a teacher loaded once, answering whole batches of requests."""

    def __init__(self, spec: dict, cfg: dict, teacher: str, precision: str | None, device: str | None):
        from protege.models.device import use_device
        from protege.models.precision import use_precision
        from protege.models.resolve import load_lm

        self.spec, self.cfg = TaskSpec(**spec), GenerateConfig(**cfg)
        self.precision, self.device = precision, device
        with use_precision(precision), use_device(device):
            kwargs = {} if teacher.startswith("openai:") else {"quantize": self.cfg.quantize}
            self.lm = load_lm(teacher, batch_size=self.cfg.batch_size, **kwargs)

    def pid(self) -> int:
        return os.getpid()

    def run(self, batch: list[dict]) -> list[dict]:
        from protege.models.device import use_device
        from protege.models.precision import use_precision
        from protege.synth.generate import decoding_config, make_record

        with use_precision(self.precision), use_device(self.device):
            outs = self.lm.generate([r["prompt"] for r in batch], decoding_config(self.spec, self.cfg,
                                                                                   batch[0]["id"]))
        return [make_record(self.spec, r, o, self.lm.name) for r, o in zip(batch, outs)]


def run_generate_sharded(spec: TaskSpec, cfg: GenerateConfig, stage: StageDir, teacher: str,
                         executor: ExecutorSettings, precision: str | None = None, device: str | None = None,
                         progress: bool = True, on_workers=None) -> dict:
    """Like run_generate, on `executor.workers` Ray actors. `on_workers(actors)`: called once they are up."""
    from tqdm.auto import tqdm

    from protege.synth.generate import summarize_generation
    from protege.synth.plan import planned_requests

    ray = start_ray(executor)
    log = JsonlLog(stage / SAMPLES)
    done = log.ids()
    todo = [r for r in planned_requests(spec, cfg) if r["id"] not in done]
    batches = [todo[i: i + cfg.batch_size] for i in range(0, len(todo), cfg.batch_size)]
    if batches:
        actor = ray.remote(GenerateWorker).options(num_cpus=executor.cpus_per_worker, max_restarts=RESTARTS,
                                                   max_task_retries=RESTARTS)
        spec_dump = spec.model_dump()
        workers = [actor.remote(spec_dump, cfg.model_dump(), teacher, precision, device)
                   for _ in range(min(executor.workers, len(batches)))]
        if on_workers is not None:
            on_workers(workers)
        bar = tqdm(total=len(todo), desc=f"generate ({teacher}, {len(workers)} Ray workers)", disable=not progress,
                   unit="example")

        def done(batch: list[dict], records: list[dict]) -> None:
            log.append(records)
            bar.update(len(records))

        try:
            dispatch(ray, workers, batches, lambda worker, batch: worker.run.remote(batch), done, log, "batch")
        finally:
            bar.close()
    return summarize_generation(log.read())


"""What every training method is: one class behind one signature, `train(job) -> summary`.

    from protege.train.registry import method
    summary = method(cfg.train.method).train(TrainJob(spec, cfg, stage, student, rows))

A method writes `adapter/` (a LoRA adapter on the student) and `train_log.jsonl` into `job.stage` and returns
the stage summary (a JSON-able dict that names the method). `job.start_adapter` is an adapter to go on training
(this run's SFT adapter where the method's settings say `start: sft`); the pipeline trains or reuses it before
the train stage, so no method calls back into the pipeline. Adding a method: see train/registry.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from protege.config import RunConfig
from protege.store import StageDir
from protege.tasks.spec import Example, TaskSpec


@dataclass
class TrainJob:
    spec: TaskSpec
    cfg: RunConfig
    stage: StageDir
    student: object  # the LocalLM being trained
    rows: list[dict]  # curated rows (and the seeds, with train.include_seeds); never the test set
    start_adapter: Path | None = None
    progress: bool = True
    echo: Callable[[str], None] = field(default=print)

    def items(self) -> list[Example]:
        """The rows as Examples (ids made up where a row has none), for methods that ask models to answer them."""
        out = []
        for n, row in enumerate(self.rows):
            fields = {k: v for k, v in row.items() if k in Example.model_fields}
            fields.setdefault("id", f"row-{n}")
            out.append(Example(**fields))
        return out


class TrainMethod(Protocol):
    name: str  # the value of train.method

    def train(self, job: TrainJob) -> dict:
        """Train the student on the job's rows; write adapter/ into job.stage; return the stage summary."""
        ...

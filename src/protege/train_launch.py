"""One process of a data-parallel train stage: what `protege train CONFIG --processes N` starts N of.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m protege.train_launch CONFIG [key=value ...]
    accelerate launch --multi_gpu --num_processes 2 -m protege.train_launch CONFIG   # GPUs (torchrun underneath)

The stages before train must be done (the CLI runs them first, in one process); every process then runs the
train stage over its share of each batch (train/distributed.py) and rank 0 writes the stage.
"""
from __future__ import annotations

import sys

from torch.distributed.elastic.multiprocessing.errors import record


@record  # a failing process's traceback goes into the launcher's "Root Cause" summary, not only its own output
def main(argv: list[str] | None = None) -> None:
    from protege.config import load_config
    from protege.pipeline import Pipeline
    from protege.train.distributed import leave_process_group, process_group

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        raise SystemExit("usage: protege.train_launch CONFIG [key=value ...]")
    rank, _ = process_group()
    pipeline = Pipeline(load_config(argv[0], argv[1:]), progress=rank == 0,
                        echo=print if rank == 0 else (lambda message: None))
    pipeline.run("train")
    leave_process_group()


if __name__ == "__main__":
    main()

"""Ray for the stages that shard over workers (synth/sharded.py, evaluate/sharded.py): connect or start once,
and hand parts of the work to actors.

    ray = start_ray(cfg.executor)     # executor.address None: a local cluster of executor.ray_num_cpus CPUs
    dispatch(ray, workers, parts, lambda w, part: w.run.remote(part), on_done, log)
"""
from __future__ import annotations

from protege.config import ExecutorSettings

RESTARTS = 3  # how often Ray brings back a dead worker (and retries its batch) before the stage fails


def start_ray(executor: ExecutorSettings):
    try:
        import ray
    except ImportError:
        raise RuntimeError("executor.kind: ray needs Ray: pip install 'protege[ray]'") from None
    if not ray.is_initialized():
        if executor.address is None:
            ray.init(num_cpus=executor.ray_num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=executor.address, log_to_driver=False)
    return ray


def dispatch(ray, workers: list, parts: list, call, on_done, log, what: str = "part") -> None:
    """Run every part on the workers, two in flight per worker (a worker never waits for the driver), calling
    `on_done(part, result)` in the driver as each comes back; the workers are killed at the end. A part whose
    worker failed past Ray's restarts stops the stage with what is kept in `log` (a JsonlLog) and how to go on."""
    queue, in_flight = list(reversed(parts)), {}

    def submit(worker) -> None:
        if queue:
            part = queue.pop()
            in_flight[call(worker, part)] = (worker, part)

    for worker in workers + workers:
        submit(worker)
    try:
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            worker, part = in_flight.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as e:
                raise RuntimeError(f"a worker failed {RESTARTS + 1} times on a {what} ({type(e).__name__}: "
                                   f"{str(e)[:300]}); the {len(log.ids())} records done are kept in {log.path}: "
                                   "rerun to go on") from None
            on_done(part, result)
            submit(worker)
    finally:
        for worker in workers:
            ray.kill(worker)

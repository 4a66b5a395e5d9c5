"""Ray for the stages that shard over workers (synth/sharded.py, evaluate/sharded.py): connect or start once.

    ray = start_ray(cfg.executor)     # executor.address None: a local cluster of executor.ray_num_cpus CPUs
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

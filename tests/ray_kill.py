"""Kill a Ray worker's process outright part of the way through a stage (the sharded stages' fault tests)."""
import os
import signal
import threading
import time


def kill_first_worker_after(ray, log_path, lines: int, killed: list):
    """An `on_workers` callback: once `log_path` holds `lines` records, SIGKILL the first worker's process and
    note in `killed` how many records were there."""
    def on_workers(workers):
        pid = ray.get(workers[0].__ray_call__.remote(lambda self: os.getpid()))

        def watch():
            while not killed:
                done = log_path().read_text().count("\n") if log_path().exists() else 0
                if done >= lines:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(done)
                time.sleep(0.005)

        threading.Thread(target=watch, daemon=True).start()

    return on_workers

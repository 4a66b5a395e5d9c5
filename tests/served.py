"""A real `protege serve` process over the tiny test model, restartable on the same port (tests share one).

    s = ServerProcess(model_dir, log_path); s.start(); OpenAILM(s.model, s.url); s.kill()
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


class ServerProcess:
    """`python -m protege.cli serve` on a fixed free port, restartable on the same port."""

    def __init__(self, model_dir: Path, log: Path):
        self.model_dir, self.log = model_dir, log
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.root + "/v1"

    def start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
        cmd = [sys.executable, "-m", "protege.cli", "serve", "--model", str(self.model_dir),
               "--port", str(self.port), "--batch-size", "8"]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self.model = self.health()["model"]  # the model folder's name
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"server not ready in 90 s:\n{self.log.read_text()}")

    def health(self) -> dict:
        with urllib.request.urlopen(self.root + "/health", timeout=5) as r:
            return json.load(r)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

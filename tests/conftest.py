import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_model, write_tiny_task  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_server(tiny_model_dir, tmp_path_factory):
    """One `protege serve` of the tiny model for every test that needs a real OpenAI-compatible server."""
    from served import ServerProcess

    server = ServerProcess(tiny_model_dir, tmp_path_factory.mktemp("serve") / "server.log")
    server.start()
    yield server
    server.kill()


@pytest.fixture()
def tiny_task(tmp_path) -> Path:
    return write_tiny_task(tmp_path / "task")

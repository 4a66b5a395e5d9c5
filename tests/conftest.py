import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from tiny import build_tiny_model, write_tiny_task  # noqa: E402


def pytest_report_header(config):
    """The machine a failure report came from: which precision `auto` means here decides what every test that
    does not pin one computes in."""
    from protege.models.precision import machine_line

    return machine_line()


@pytest.fixture(autouse=True)
def _pinned_precision(request, monkeypatch):
    """`@pytest.mark.precision("fp32")`: the test computes in that precision on every CPU (an exact-equality test
    pins the precision it is about; a bf16 test forces bf16 even where auto would not pick it)."""
    marker = request.node.get_closest_marker("precision")
    if marker is not None:
        monkeypatch.setenv("PROTEGE_PRECISION", marker.args[0])


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


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster for one test module (shut down after it, so other modules start their own)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()

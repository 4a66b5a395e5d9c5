"""The Ray executor on a local 2-CPU cluster: two cells run at the same time, in two worker processes."""
import json

import pytest

from protege.benchmark.config import parse_bench_config
from protege.benchmark.runner import run_bench
from test_bench_run import assets, bench_dict  # noqa: F401 - `assets` is a fixture

ray = pytest.importorskip("ray")


def test_ray_executor_runs_two_cells_in_parallel(tmp_path, assets):  # noqa: F811
    raw = bench_dict(tmp_path, assets, tasks=("tiny",), teachers=("m0",),
                     executor={"kind": "ray", "ray_num_cpus": 2, "cpus_per_cell": 1, "memory_gb_per_cell": 0.5})
    # Cells long enough (80 training steps) that the second worker's later start (the first is warm from the
    # data job; the second still imports torch) cannot let a cell finish before the other begins: at 2 epochs,
    # on one run in three the second started 0.24 s after the first had ended. At 40 epochs, under a niced
    # compile on both cores, the cells took 11.7 and 6.9 s and overlapped by 4.3 s.
    raw["base"]["train"].update(epochs=40, checkpoint_every=1000)
    messages = []
    out = run_bench(parse_bench_config(raw), progress=False, echo=messages.append)
    assert not ray.is_initialized()  # the local cluster run_bench started is shut down again
    status = [json.loads(p.read_text()) for p in (out / "status").iterdir()]
    data = [s for s in status if s["kind"] == "data"]
    cells = [s for s in status if s["kind"] == "cell"]
    assert len(data) == 1 and len(cells) == 2 and all(s["ok"] for s in status), messages
    # Each cell records when it started and ended in its worker: the two intervals overlap.
    assert max(c["started"] for c in cells) < min(c["ended"] for c in cells), cells
    assert len({c["pid"] for c in cells}) == 2
    assert data[0]["ended"] <= min(c["started"] for c in cells)  # data phase first
    report = (out / "report.md").read_text()
    assert "2 of 2 cells finished" in report and "Strongest after fine-tuning" in report
    assert (out / "plots" / "rank-0.png").is_file()

"""The GPU check's timing module runs on the CPU too (small), so scripts/gpu-check.sh is not first tried on a GPU."""
import json


def test_gpu_check_measures_every_block_on_the_cpu(tmp_path):
    from protege.lab.throughput.gpu_check import main

    report = main(["--device", "cpu", "--batch", "2", "--length", "16", "--new-tokens", "4", "--repeats", "1",
                   "--top-k", "4", "--layers", "1", "--out", str(tmp_path / "figures.json")])
    assert report["device"] == "cpu" and report["rows"][0]["precision"] == "fp32"
    for row in report["rows"]:
        assert all(row[k] > 0 for k in ("generate_tok_s", "kd_cache_tok_s", "sft_step_tok_s", "kd_step_tok_s"))
    assert json.loads((tmp_path / "figures.json").read_text())["rows"] == report["rows"]

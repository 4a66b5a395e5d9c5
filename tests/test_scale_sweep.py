"""The scale sweep (protege.lab.experiments.scale) on the tiny model: each stage in its own process, with its time,
tokens and the child's own peak memory; a second sweep reuses every stage, and the kept rows (--rows) survive a
rerun that reuses them and gain its new sizes."""
import json

from protege.lab.experiments import scale
from tiny import write_tiny_config


def test_a_tiny_sweep_measures_each_stage_resumes_and_keeps_its_rows(tmp_path, tiny_model_dir, tiny_task,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    keep = tmp_path / "scale.json"
    first = scale.sweep(config, [12], [], keep)
    assert json.loads(keep.read_text()) == first and all(r["seconds"] > 0 and r["machine"] for r in first)
    rows = scale.sweep(config, [12, 24], [], keep)  # 12 reused: its measured seconds stay
    assert [(r["n"], r["stage"]) for r in rows] == [(n, s) for n in (12, 24) for s in scale.STAGES]
    assert rows[:len(scale.STAGES)] == first and json.loads(keep.read_text()) == rows
    assert all(r["ok"] and r["seconds"] > 0 and r["peak_rss_mib"] > 50 for r in rows)
    generate = [r for r in rows if r["stage"] == "generate"]
    assert generate[1]["tokens"] > generate[0]["tokens"] > 0
    again = scale.sweep(config, [12], [])
    assert all(r["seconds"] is None for r in again)  # reused
    text = scale.table(rows, "cmd")
    assert "| generate |" in text and "N = 24" in text and "Measured on: " in text
    assert "x" in text.split("| generate |")[1]
    json.dumps(rows)

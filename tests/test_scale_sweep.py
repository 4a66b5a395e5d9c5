"""The scale sweep (protege.lab.experiments.scale) on the tiny model: each stage in its own process, with its time,
tokens and the child's own peak memory; a second sweep reuses every stage."""
import json

from protege.lab.experiments import scale
from tiny import write_tiny_config


def test_a_tiny_sweep_measures_each_stage_and_resumes(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = str(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    rows = scale.sweep(config, [12, 24], [])
    assert [(r["n"], r["stage"]) for r in rows] == [(n, s) for n in (12, 24) for s in scale.STAGES]
    assert all(r["ok"] and r["seconds"] > 0 and r["peak_rss_mib"] > 50 for r in rows)
    generate = [r for r in rows if r["stage"] == "generate"]
    assert generate[1]["tokens"] > generate[0]["tokens"] > 0
    again = scale.sweep(config, [12], [])
    assert all(r["seconds"] is None for r in again)  # reused
    text = scale.table(rows, "cmd")
    assert "| generate |" in text and "N = 24" in text
    json.dumps(rows)

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
    rows = scale.sweep(config, [12, 24], [], keep)  # 12 reused (not rerun): its measured seconds stay
    assert [(r["n"], r["stage"]) for r in rows] == [(n, s) for n in (12, 24) for s in scale.STAGES]
    assert rows[:len(scale.STAGES)] == first and json.loads(keep.read_text()) == rows
    assert all(r["ok"] and r["seconds"] > 0 and r["peak_rss_mib"] > 50 for r in rows)
    generate = [r for r in rows if r["stage"] == "generate"]
    assert generate[1]["tokens"] > generate[0]["tokens"] > 0
    text = scale.table(rows, "cmd")
    assert "| generate |" in text and "N = 24" in text and "Measured on: " in text
    assert "x" in text.split("| generate |")[1]
    json.dumps(rows)


def test_a_resumed_stage_counts_every_process_that_worked_on_it(tmp_path):
    """A sweep killed in a stage and run again: the row's seconds add the killed process's (attempts.json)."""
    stage = tmp_path / "trec6" / "generate-abc"
    stage.mkdir(parents=True)
    (stage / "attempts.json").write_text(json.dumps([{"began": 100.0, "seconds": 40.0},
                                                     {"began": 300.0, "seconds": 25.0}]))
    (stage / "MANIFEST.json").write_text(json.dumps({"summary": {}}))
    assert scale.earlier_runs(tmp_path, "generate") == (1, 40.0)
    assert scale.earlier_runs(tmp_path, "train") == (0, 0.0)
    (stage / "attempts.json").write_text(json.dumps([{"began": 300.0, "seconds": 25.0}]))
    assert scale.earlier_runs(tmp_path, "generate") == (0, 0.0)
    row = {"n": 500, "stage": "generate", "seconds": 65.0, "runs": 2, "tokens": 10, "peak_rss_mib": 100, "machine": "m"}
    assert "| 65 (2 runs) / 10 / 100 |" in scale.table([row], "cmd")

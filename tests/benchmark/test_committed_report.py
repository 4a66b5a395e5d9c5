"""The committed bench report (docs/bench/small) regenerates byte for byte from the records it was built from.

analysis.json keeps every cell's record as collected from the run directories; the analysis (ranks, intervals,
tests, teacher choice, selection) and the Markdown are recomputed from them here, so a change that moves any
number or sentence of the report fails this test. Plots are drawn but not written over the committed PNGs.
"""
import json
from pathlib import Path

import matplotlib.pyplot as plt

from protege.benchmark import plots
from protege.benchmark.analysis import analyse
from protege.benchmark.config import load_bench_config
from protege.benchmark.report import build

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "docs" / "bench" / "small"


def test_the_committed_bench_report_regenerates_byte_for_byte(monkeypatch):
    def drawn_not_saved(fig, path):
        plt.close(fig)
        return path

    monkeypatch.setattr(plots, "_save", drawn_not_saved)
    monkeypatch.chdir(ROOT)  # the report's links are relative to the repository root's runs/
    bench = load_bench_config(SMALL / "bench.yaml")
    records = json.loads((SMALL / "analysis.json").read_text())["records"]
    tasks = list(dict.fromkeys(r["task"] for r in records))
    analysis = analyse(records, tasks, bench.students, bench.teachers, bench.methods,
                       resamples=bench.rank_resamples, seed=bench.seed)
    markdown = build(bench, analysis, records, Path("docs/bench/small")).markdown()
    assert markdown == (SMALL / "report.md").read_text()

"""PNG plots of a bench analysis (matplotlib's object API on the Agg canvas: no display, no pyplot state).

    mean_rank_plot(slice_analysis, names, path)   # mean rank with t and bootstrap 95% intervals
    plasticity_plot(...), vs_teacher_plot(...), cost_plot(candidates, path)
"""
from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png", dpi=110)
    tmp.replace(path)
    return path


def mean_rank_plot(s: dict, names: dict[str, str], path: Path, key: str = "tuned_rank",
                   title: str = "Mean rank after fine-tuning") -> Path:
    r = s[key]
    order = r["order"]
    fig = Figure(figsize=(6.4, 0.6 + 0.55 * len(order)))
    ax = fig.add_subplot()
    for i, m in enumerate(order):
        for offset, (method, style) in zip((-0.12, 0.12), (("t", "o"), ("bootstrap", "s"))):
            mean, low, high = r[method][m]
            err = None if math.isnan(low) else [[mean - low], [high - mean]]
            ax.errorbar([mean], [i + offset], xerr=err, fmt=style, capsize=4, color="C0" if method == "t" else "C1",
                        label=f"{method} 95% interval" if i == 0 else None)
    ax.set_yticks(range(len(order)), [names[m] for m in order])
    ax.set_xlim(0.5, len(order) + 0.5)  # ranks run from 1 to the number of students
    ax.invert_yaxis()
    ax.set_xlabel(f"mean rank over {len(s['tasks'])} tasks (1 = best)")
    ax.set_title(f"{title}: teacher {names[s['teacher']]}, {s['method']}")
    ax.legend(loc="best", fontsize="small")
    return _save(fig, path)


def _grouped(ax, tasks: list[str], series: dict[str, list[float]]) -> None:
    width = 0.8 / max(len(series), 1)
    for j, (label, values) in enumerate(series.items()):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(tasks))]
        ax.bar(xs, values, width, label=label)
    ax.set_xticks(range(len(tasks)), tasks)


def plasticity_plot(s: dict, names: dict[str, str], path: Path) -> Path:
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    _grouped(ax, s["tasks"], {names[m]: [100 * s["plasticity"][m][t] for t in s["tasks"]] for m in s["students"]})
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel("fine-tuned minus best baseline (points)")
    ax.set_title(f"Plasticity: teacher {names[s['teacher']]}, {s['method']}")
    ax.legend(fontsize="small")
    return _save(fig, path)


def vs_teacher_plot(s: dict, names: dict[str, str], path: Path) -> Path:
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    _grouped(ax, s["tasks"], {names[m]: [100 * s["tuned"][m][t] for t in s["tasks"]] for m in s["students"]})
    teacher = {row["task"]: row["teacher_score"] for row in s["vs_teacher"] if row["teacher_score"] is not None}
    for i, t in enumerate(s["tasks"]):
        if t in teacher:
            ax.hlines(100 * teacher[t], i - 0.45, i + 0.45, colors="black", linestyles="dashed",
                      label="teacher" if i == 0 else None)
    ax.set_ylabel("headline metric (points)")
    ax.set_title(f"Students after fine-tuning vs teacher {names[s['teacher']]} ({s['method']})")
    ax.legend(fontsize="small")
    return _save(fig, path)


def cost_plot(candidates: list[dict], path: Path) -> Path:
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    markers = {"fine-tuned": "o", "baseline": "s", "teacher": "^"}
    for kind, marker in markers.items():
        pts = [c for c in candidates if c["kind"] == kind and c["seconds"]]
        if pts:
            ax.scatter([c["seconds"] for c in pts], [100 * c["metric"] for c in pts], marker=marker, label=kind)
            for c in pts:
                ax.annotate(c["name"], (c["seconds"], 100 * c["metric"]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per item (p50, measured in evaluation; log scale)")
    ax.set_ylabel("mean headline metric over tasks (points)")
    ax.set_title("Metric vs inference cost")
    ax.legend(fontsize="small")
    return _save(fig, path)

"""The run report's plots (PNG, embedded in report.html): each row's headline metric with its 95% interval, and
the training loss per step.

    metric_plot(rows, metric, path); loss_plot(train_log_records, path)
"""
from __future__ import annotations

from pathlib import Path


def _figure(width: float = 6.4, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=100)


def metric_plot(rows: list[dict], metric: str, path: Path) -> Path:
    plt, fig, ax = _figure()
    names = [r["row"] for r in rows]
    values = [100 * r[metric] for r in rows]
    low = [100 * (r[metric] - r[f"{metric}_ci"][0]) for r in rows]
    high = [100 * (r[f"{metric}_ci"][1] - r[metric]) for r in rows]
    ax.barh(names, values, xerr=[low, high], color="#4c72b0", ecolor="#222222", capsize=4)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (points, 95% bootstrap interval)")
    ax.set_xlim(0, 100)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def loss_plot(records: list[dict], path: Path) -> Path:
    plt, fig, ax = _figure(height=2.8)
    steps = [r["step"] for r in records if "loss" in r]
    ax.plot(steps, [r["loss"] for r in records if "loss" in r], color="#dd8452")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

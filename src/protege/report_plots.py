"""The run report's plots (PNG, embedded in report.html): each row's headline metric with its 95% interval, the
time and prompt tokens per answer of each row (student against teacher), the fine-tuned student's confusion
matrix (classification), and the training loss per step.

    metric_plot(rows, metric, path); cost_plot(rows, path); confusion_plot(records, labels, path)
    loss_plot(train_log_records, path)
"""
from __future__ import annotations

from pathlib import Path


def _figure(width: float = 6.4, height: float = 3.2, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, columns, figsize=(width, height), dpi=100)
    return plt, fig, axes


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


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
    return _save(plt, fig, path)


def loss_plot(records: list[dict], path: Path) -> Path:
    plt, fig, ax = _figure(height=2.8)
    steps = [r["step"] for r in records if "loss" in r]
    ax.plot(steps, [r["loss"] for r in records if "loss" in r], color="#dd8452")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    return _save(plt, fig, path)


def cost_plot(rows: list[dict], path: Path) -> Path:
    """Seconds per answer (p50, with p95 as the whisker) and prompt tokens per answer, one bar per row."""
    plt, fig, (time_ax, tokens_ax) = _figure(width=8.0, height=0.5 * len(rows) + 1.2, columns=2)
    names = [r["row"] for r in rows]
    p50 = [r.get("seconds_p50") or 0.0 for r in rows]
    p95 = [max((r.get("seconds_p95") or 0.0) - m, 0.0) for r, m in zip(rows, p50)]
    time_ax.barh(names, p50, xerr=[[0] * len(rows), p95], color="#55a868", ecolor="#222222", capsize=4)
    time_ax.set_xlabel("seconds per answer (p50; whisker p95)")
    tokens_ax.barh(names, [r.get("tokens_in_mean") or 0.0 for r in rows], color="#8172b2")
    tokens_ax.set_xlabel("prompt tokens per answer")
    tokens_ax.set_yticks([])
    for ax in (time_ax, tokens_ax):
        ax.invert_yaxis()
    return _save(plt, fig, path)


def confusion_plot(records: list[dict], labels: list[str], path: Path) -> Path:
    """Rows: the gold label; columns: what the model chose; each cell the count, shaded by its share of the row."""
    import numpy as np

    index = {label: i for i, label in enumerate(labels)}
    counts = np.zeros((len(labels), len(labels)), dtype=int)
    for r in records:
        if r.get("gold") in index and r.get("prediction") in index:
            counts[index[r["gold"]], index[r["prediction"]]] += 1
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = 0.45 * len(labels) + 2.0
    plt, fig, ax = _figure(width=side + 1.0, height=side)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if len(labels) <= 20:  # counts stay readable up to about 20 labels
        for i in range(len(labels)):
            for j in range(len(labels)):
                if counts[i, j]:
                    ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black")
    ticks = range(len(labels)) if len(labels) <= 40 else []
    ax.set_xticks(list(ticks), [labels[i] for i in ticks], rotation=90 if len(labels) > 8 else 0)
    ax.set_yticks(list(ticks), [labels[i] for i in ticks])
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    return _save(plt, fig, path)

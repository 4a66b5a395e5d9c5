"""Paired comparison of two models scored on the same items: McNemar on per-item right/wrong, and a paired
bootstrap of the headline metric where that metric is not a plain mean of right/wrong (F1s).

    compare(spec, "fine-tuned", tuned_records, "baseline (zero-shot)", base_records)
"""
from __future__ import annotations

from protege.scoring.metrics.paired import mcnemar, paired_bootstrap
from protege.evaluate.summary import item_correct, metric_fn
from protege.tasks.spec import TaskSpec


def compare(spec: TaskSpec, name_a: str, records_a: list[dict], name_b: str, records_b: list[dict],
            resamples: int = 1000) -> dict:
    if [r["id"] for r in records_a] != [r["id"] for r in records_b]:
        raise ValueError(f"{name_a} and {name_b} were not scored on the same items in the same order")
    test = mcnemar([item_correct(spec, r) for r in records_a], [item_correct(spec, r) for r in records_b])
    out = {"model_a": name_a, "model_b": name_b, "only_a_right": test["b"], "only_b_right": test["c"],
           "p_value": test["p_value"], "method": test["method"]}
    metric = spec.headline_metric
    if metric in ("f1", "slot_f1", "macro_f1"):
        fn = metric_fn(spec, metric)
        boot = paired_bootstrap(lambda _, recs: fn(recs), [r["id"] for r in records_a], records_a, records_b,
                                n_resamples=resamples)
        out["paired_bootstrap"] = {"metric": metric, **boot}
    return out

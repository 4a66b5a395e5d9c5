"""Finished eval results written by hand, for the experiment tables' tests (no model runs).

    result = finished_result(tmp_path / "a", spec, [True, False, ...], teacher="large (1.5B)")
"""
import json
from pathlib import Path

from protege.evaluate.rows import Row


def _write_records(path: Path, right: list[bool]) -> None:
    records = [{"id": f"test-{i}", "gold": "a", "prediction": "a" if ok else "b"} for i, ok in enumerate(right)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def finished_result(eval_dir: Path, spec, right: list[bool], zero_shot_right: list[bool] | None = None,
                    **fields) -> dict:
    """A result as the experiment commands hold it: its fine-tuned student got item i right where right[i] says
    (tiny classification records on disk, for the paired tests), a zero-shot row at 10 (its answers on disk only
    where zero_shot_right says which it got right), a zero-shot teacher row at 50, HumanEval 5.0 -> 4.0 in the
    forgetting suite and the eval stage's own McNemar against the untuned student (p 0.0123, 9 vs 2)."""
    eval_dir.mkdir(parents=True)
    _write_records(eval_dir / "fine-tuned.jsonl", right)
    zero = {"row": Row.ZERO_SHOT, "accuracy": 0.1}
    if zero_shot_right is not None:
        _write_records(eval_dir / "zero-shot.jsonl", zero_shot_right)
        zero["samples"] = "zero-shot.jsonl"
    score = sum(right) / len(right)
    rows = [zero, {"row": Row.TEACHER, "accuracy": 0.5, "shots": 0},
            {"row": Row.FINE_TUNED, "accuracy": score, "accuracy_ci": [score - 0.1, score + 0.1],
             "samples": "fine-tuned.jsonl"}]
    forgetting = {"entries": [{"task": "humaneval", "before": 0.05, "after": 0.04},
                              {"task": "mbpp", "skipped": "it is the target task"}]}
    comparisons = [{"model_b": Row.ZERO_SHOT, "p_value": 0.0123, "only_a_right": 9, "only_b_right": 2,
                    "method": "chi-square-continuity-corrected"}]
    return {"spec": spec, "eval_dir": str(eval_dir), "train": {"seconds": 12.4, "steps": 3, "tokens": {"total": 4096}},
            "eval": {"metric": "accuracy", "test_items": len(right), "rows": rows, "forgetting": forgetting,
                     "comparisons": comparisons}, **fields}

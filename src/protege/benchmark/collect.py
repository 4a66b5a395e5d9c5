"""Bench results -> one flat record per cell, and score tables over them; read from the run directories.

    records = collect(cells, status_dir)        # eval results.json, samples, capacity and status of each cell
    table(records, "tuned", teacher, method)    # {student: {task: value}} of the finished cells

Everything is recomputed from the run directories each time, so a resumed bench reports exactly what an
unbroken one does. A record holds the headline metric (a fraction in [0, 1]) of each eval row, the row's
measured cost, the forgetting suite's largest drop, the capacity diagnostic, the student-vs-teacher paired
test on per-item scores (items matched by id), the fine-tuned row's per-item scores (`tuned_items`, for
comparing teachers item by item), the test-set reads its eval and curate stages logged (`test_reads`), and the
eval stage path every number comes from.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from protege.benchmark.capacity import capacity_stage
from protege.benchmark.matrix import Cell
from protege.benchmark.rank_tests import paired_test
from protege.evaluate.forgetting import at_floor
from protege.evaluate.rows import Row
from protege.evaluate.test_access import LOG_NAME, read_log
from protege.store import RESULTS, read_json
from protege.tasks.kinds import kind_named

ROW_FIELDS = {"zero": Row.ZERO_SHOT, "few": Row.FEW_SHOT, "tuned": Row.FINE_TUNED, "teacher_eval": Row.TEACHER}


def read_items(eval_dir: Path, row: dict, kind: str, metric: str) -> dict[str, float]:
    """Each item's share of the headline metric in one eval row (the kind's `item_score`)."""
    task_kind = kind_named(kind)
    scores = {}
    for line in (eval_dir / row["samples"]).read_text().splitlines():
        rec = json.loads(line)
        scores.setdefault(rec["id"], task_kind.item_score(metric, rec))
    return scores


def stage_reads(stage_dir: Path) -> dict[str, dict[str, int]]:
    """{purpose: {task: reads}} from one stage's test-access log (evaluate/test_access.py); {} if it read none."""
    out: dict[str, Counter] = {}
    for entry in read_log(Path(stage_dir) / LOG_NAME):
        out.setdefault(entry.get("purpose", "?"), Counter())[entry.get("task", "?")] += 1
    return {purpose: dict(by_task) for purpose, by_task in out.items()}


def _row_summary(row: dict, metric: str) -> dict:
    return {"value": row[metric], "ci": row.get(f"{metric}_ci"), "seconds_p50": row.get("seconds_p50"),
            "weights_mb": row.get("weights_mb"), "model": row["model"]}


def cell_record(cell: Cell, status: dict | None) -> dict:
    rec = {"task": cell.task_name, "teacher": cell.teacher, "student": cell.student, "method": cell.method,
           "eval_dir": str(cell.stages["eval"].path), "done": cell.stages["eval"].complete, "error": None}
    cap = capacity_stage(cell.cfg, cell.stages["curate"])
    if cap.complete:
        c = read_json(cap / "capacity.json")
        rec["capacity"] = {"nll": c["nll_per_token"], "tokens": c["tokens"], "dir": str(cap.path)}
    else:
        rec["capacity"] = None
    rec["test_reads"] = {"eval": stage_reads(cell.stages["eval"].path),
                         "curate": {"dir": str(cell.stages["curate"].path),
                                    "reads": stage_reads(cell.stages["curate"].path)}}
    if not rec["done"]:
        rec["error"] = (status or {}).get("error") or "not run yet"
        return rec
    eval_dir = cell.stages["eval"].path
    results = read_json(eval_dir / RESULTS)
    metric, kind = results["metric"], results["kind"]
    rows = {r["row"]: r for r in results["rows"]}
    rec.update(metric=metric, kind=kind, test_items=results["test_items"])
    for name, row in ROW_FIELDS.items():
        rec[name] = _row_summary(rows[row], metric) if row in rows else None
    rec["base"] = max((rec["zero"], rec["few"]), key=lambda r: r["value"])  # ties: zero-shot
    rec["base_row"] = "zero-shot" if rec["base"] is rec["zero"] else "few-shot"
    entries = [e for e in results.get("forgetting", {}).get("entries", []) if "skipped" not in e]
    rec["forgetting"] = {"max_drop": max((e["drop"] for e in entries), default=None),
                         "worst": max(entries, key=lambda e: e["drop"])["task"] if entries else None,
                         "passed": results.get("forgetting", {}).get("passed", True),
                         "measured": [e["task"] for e in entries], "floor": at_floor(entries)}
    rec["vs_teacher"] = None
    if Row.FINE_TUNED not in rows:
        return rec
    student = read_items(eval_dir, rows[Row.FINE_TUNED], kind, metric)
    rec["tuned_items"] = student  # per-item scores: the teachers' students are tested head to head on them
    if Row.TEACHER in rows:
        teacher = read_items(eval_dir, rows[Row.TEACHER], kind, metric)
        ids = [i for i in student if i in teacher]
        if ids:
            rec["vs_teacher"] = paired_test([student[i] for i in ids], [teacher[i] for i in ids])
    return rec


def collect(cells: list[Cell], status_dir: Path) -> list[dict]:
    records = []
    for cell in cells:
        path = Path(status_dir) / f"{cell.key}.json"
        records.append(cell_record(cell, read_json(path) if path.exists() else None))
    return records


def slices(records: list[dict]) -> list[tuple[str, str]]:
    """The (teacher, method) pairs, in config order: students are ranked within each."""
    return list(dict.fromkeys((r["teacher"], r["method"]) for r in records))


def table(records: list[dict], field: str, teacher: str, method: str) -> dict[str, dict[str, float]]:
    """{student: {task: value}} of one row (`tuned`, `zero`, `few`, `base`) over the finished cells of a slice."""
    out: dict[str, dict[str, float]] = {}
    for r in records:
        if r["teacher"] == teacher and r["method"] == method and r["done"] and r.get(field):
            out.setdefault(r["student"], {})[r["task"]] = r[field]["value"]
    return out

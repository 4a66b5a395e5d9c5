"""Simplicity filter for code: drop solutions that are too big, too branchy, lint-dirty or carry dead code, and
of several passing solutions to one problem keep the simplest. Reports the size of solutions going in and out.

    drops, stats = simplest_solutions(records, cfg)
    stats["before"]["cyclomatic"]["mean"], stats["after"]["ast_nodes"]["median"]

Ranking among solutions of one problem (same normalised statement): fewest decision points, then fewest AST
nodes, then fewest lines, then the earlier id. Measures are defined in codemetrics.py.
"""
from __future__ import annotations

import statistics

from protege.config import CurateConfig
from protege.synth.filters.codemetrics import CodeMetrics, measure
from protege.tasks.kinds.code import entry_point_of
from protege.tasks.text import normalise


def simplest_solutions(records: list[dict], cfg: CurateConfig) -> tuple[dict[int, tuple[str, dict]], dict]:
    metrics = [measure(r["reference"], entry_point_of(r), r.get("tests") or "") for r in records]
    drops: dict[int, tuple[str, dict]] = {}
    for pos, m in enumerate(metrics):
        verdict = _verdict(m, cfg)
        if verdict:
            drops[pos] = (verdict[0], {**m.size(), **verdict[1]})
    if cfg.keep_simplest:
        groups: dict[str, list[int]] = {}
        for pos, rec in enumerate(records):
            if pos not in drops:
                groups.setdefault(normalise(rec.get("text")), []).append(pos)
        for members in groups.values():
            best = min(members, key=lambda p: (metrics[p].cyclomatic, metrics[p].ast_nodes, metrics[p].lines, p))
            for pos in members:
                if pos != best:
                    drops[pos] = ("simpler_solution_kept", {**metrics[pos].size(), "kept": records[best].get("id"),
                                                            "kept_size": metrics[best].size()})
    kept = [m for pos, m in enumerate(metrics) if pos not in drops]
    return dict(sorted(drops.items())), {"before": size_stats(metrics), "after": size_stats(kept)}


def _verdict(m: CodeMetrics, cfg: CurateConfig):
    if cfg.drop_lint and m.lint:
        return "lint", {"problems": m.lint}
    if m.cyclomatic > cfg.max_cyclomatic:
        return "too_complex", {"max_cyclomatic": cfg.max_cyclomatic}
    if m.ast_nodes > cfg.max_ast_nodes:
        return "too_large", {"max_ast_nodes": cfg.max_ast_nodes}
    if m.lines > cfg.max_lines:
        return "too_long", {"max_lines": cfg.max_lines}
    if cfg.drop_unused and (m.unused or m.needless):
        return ("unused_code" if m.unused else "needless_abstraction"), {"problems": m.unused + m.needless}
    return None


def size_stats(metrics: list[CodeMetrics]) -> dict:
    out: dict = {"solutions": len(metrics)}
    for key in ("lines", "ast_nodes", "cyclomatic"):
        values = [getattr(m, key) for m in metrics]
        out[key] = ({"mean": round(statistics.fmean(values), 2), "median": statistics.median(values),
                     "max": max(values)} if values else {"mean": None, "median": None, "max": None})
    return out

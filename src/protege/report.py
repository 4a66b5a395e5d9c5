"""Report stage: the results table as Markdown (report.md) and on the terminal.

    print(render_markdown(spec, results, curation))
"""
from __future__ import annotations

from protege.store import StageDir, atomic_write_text
from protege.tasks.spec import TaskSpec


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render_markdown(spec: TaskSpec, results: dict, curation: dict) -> str:
    rows = results["rows"]
    lines = [
        f"# {spec.name}: distillation report",
        "",
        f"Test set: {results['test_items']} held-out human-written items; scoring: {results['scoring']}; "
        f"95% bootstrap intervals in brackets.",
        "",
        "| row | model | accuracy | macro-F1 | p50 s/item | p95 s/item |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["accuracy_ci"]
        flo, fhi = r["macro_f1_ci"]
        model = r["model"] + (" + LoRA" if r.get("adapter") else "") + (f", {r['shots']} shots" if r["shots"] else "")
        lines.append(f"| {r['row']} | {model} | {_pct(r['accuracy'])} [{_pct(lo)}, {_pct(hi)}] | "
                     f"{_pct(r['macro_f1'])} [{_pct(flo)}, {_pct(fhi)}] | {r['seconds_p50']:.3f} | "
                     f"{r['seconds_p95']:.3f} |")
    by = {r["row"]: r for r in rows}
    if "fine-tuned" in by and "baseline (zero-shot)" in by:
        gain = by["fine-tuned"]["accuracy"] - by["baseline (zero-shot)"]["accuracy"]
        lines += ["", f"Fine-tuned minus zero-shot baseline: {100 * gain:+.1f} accuracy points."]
    for c in results.get("comparisons", []):
        lines.append(f"- {c['model_a']} vs {c['model_b']}: McNemar p = {c['p_value']:.3g} ({c['only_a_right']} items "
                     f"only the fine-tuned student got right, {c['only_b_right']} only the other; {c['method']}).")
    lines += _baseline_lines(results, by)
    lines += ["", "## Curation", "", f"{curation.get('input')} generated, {curation.get('kept')} kept; dropped: "
              + (", ".join(f"{k} {v}" for k, v in curation.get("dropped", {}).items()) or "none") + "."]
    lines += ["", f"Provenance: git {results.get('git') or 'unknown'}, {results.get('date')}, "
              f"torch {results['versions'].get('torch')}, transformers {results['versions'].get('transformers')}."]
    return "\n".join(lines) + "\n"


def _baseline_lines(results: dict, lm_rows: dict) -> list[str]:
    """The cheap non-LLM baselines, and a plain sentence when the fine-tuned student does not beat them."""
    baselines = results.get("baselines") or []
    if not baselines:
        return []
    lines = ["", "## Cheap baselines (no language model)", "", "| baseline | accuracy | macro-F1 |", "|---|---|---|"]
    for b in baselines:
        lines.append(f"| {b['row']} | {_pct(b['accuracy'])} [{_pct(b['accuracy_ci'][0])}, {_pct(b['accuracy_ci'][1])}]"
                     f" | {_pct(b['macro_f1'])} |")
    best = max(baselines, key=lambda b: b["accuracy"])
    tuned = lm_rows.get("fine-tuned")
    if tuned is not None:
        verdict = "beats" if tuned["accuracy"] > best["accuracy"] else "does NOT beat"
        lines += ["", f"The fine-tuned student ({_pct(tuned['accuracy'])}) {verdict} the best cheap baseline, "
                  f"{best['row']} ({_pct(best['accuracy'])})."]
    return lines


def write_report(stage: StageDir, spec: TaskSpec, results: dict, curation: dict) -> str:
    text = render_markdown(spec, results, curation)
    atomic_write_text(stage / "report.md", text)
    return text

"""Report stage: the results as Markdown (report.md) and on the terminal.

    print(render_markdown(spec, results, curation))

Sections: the model table (every metric of the task's kind with 95% intervals, and cost per answer), paired
tests, cheap non-LLM baselines, the forgetting suite with its gates, curation counts, provenance. report.html
is the same text as one self-contained page with plots (report_plots.py).
"""
from __future__ import annotations

from pathlib import Path

from protege.evaluate.forgetting import at_floor
from protege.evaluate.rows import Row, shown_names, shown_rows
from protege.store import REPORT_HTML, REPORT_MD, JsonlLog, StageDir, atomic_write_text
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec



def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _with_ci(row: dict, key: str) -> str:
    lo, hi = row[f"{key}_ci"]
    return f"{_pct(row[key])} [{_pct(lo)}, {_pct(hi)}]"


def render_markdown(spec: TaskSpec, results: dict, curation: dict) -> str:
    rows, cols, metric = results["rows"], kind_of(spec).COLUMNS, spec.headline_metric
    lines = [
        f"# {spec.name}: distillation report",
        "",
        f"Test set: {results['test_items']} held-out human-written items"
        + (f"; scoring: {results['scoring']}" if kind_of(spec).LABELLED else "; greedy generation")
        + "; 95% bootstrap intervals in brackets; cost measured on this machine during evaluation.",
        "",
        "| row | model | " + " | ".join(label for _, label in cols)
        + " | p50 s/item | p95 s/item | tokens in | tokens out | weights MiB | peak RSS MiB |",
        "|---|---|" + "---|" * (len(cols) + 6),
    ]
    for r in shown_rows(rows):
        shots = f", {r['shots']} shots" if r["shots"] else ""
        model = r["model"] + (" + LoRA" if r.get("adapter") else "") + shots
        lines.append(f"| {r['row']} | {model} | " + " | ".join(_with_ci(r, key) for key, _ in cols)
                     + f" | {r['seconds_p50']:.3f} | {r['seconds_p95']:.3f} | {r['tokens_in_mean']:.0f} | "
                     f"{r.get('tokens_out_mean', 0):.0f} | {_mb(r.get('weights_mb'))} | {_mb(r.get('peak_rss_mb'))} |")
    by = {r["row"]: r for r in rows}
    if Row.FINE_TUNED in by and Row.ZERO_SHOT in by:
        gain = by[Row.FINE_TUNED][metric] - by[Row.ZERO_SHOT][metric]
        lines += ["", f"Fine-tuned minus zero-shot baseline: {100 * gain:+.1f} {metric} points."]
    lines += _cost_lines(by)
    names = shown_names(rows)
    for c in results.get("comparisons", []):
        other = names.get(c["model_b"], c["model_b"])
        if other is None:  # the zero-shot comparison again
            continue
        lines.append(f"- {c['model_a']} vs {other}: McNemar p = {c['p_value']:.3g} ({c['only_a_right']} items "
                     f"only the fine-tuned student got right, {c['only_b_right']} only the other; {c['method']}).")
        boot = c.get("paired_bootstrap")
        if boot:
            lines.append(f"  Paired bootstrap of {boot['metric']}: {100 * boot['delta']:+.1f} points "
                         f"[{100 * boot['ci_low']:+.1f}, {100 * boot['ci_high']:+.1f}], p = {boot['p_value']:.3g}.")
    if "test_reads" in results:
        lines += ["", f"Test-set reads in this run: {results['test_reads']} final evaluations of {spec.name} "
                  f"(one per distinct model and prompting; logged with who and when in the eval stage's "
                  f"{results['test_access_log']}), plus {curation.get('test_reads', 0)} by decontamination in "
                  "curation. Every choice (few-shot examples, gates) was made on seeds or validation."]
    lines += _per_class_lines(spec, by.get(Row.FINE_TUNED))
    lines += _baseline_lines(results, by)
    lines += _forgetting_lines(results.get("forgetting"))
    lines += ["", "## Curation", "", f"{curation.get('input')} generated, {curation.get('kept')} kept; dropped: "
              + (", ".join(f"{k} {v}" for k, v in curation.get("dropped", {}).items()) or "none") + "."]
    lines += _curation_lines(curation)
    lines += ["", f"Provenance: git {results.get('git') or 'unknown'}, {results.get('date')}, "
              f"torch {results['versions'].get('torch')}, transformers {results['versions'].get('transformers')}."]
    if p := results.get("precision"):  # results made before the setting existed have none (they ran fp32)
        lines += ["", f"Precision: {p['resolved']} (setting {p['setting']}) on {p['device']}, CPU {p['cpu']}."]
    return "\n".join(lines) + "\n"


def _mb(x) -> str:
    return "n/a" if x is None else f"{x:.0f}"


def _cost_lines(by: dict) -> list[str]:
    """Student vs teacher cost per answer, measured during this evaluation."""
    student, teacher = by.get(Row.FINE_TUNED), by.get(Row.TEACHER)
    if not student or not teacher or not student["seconds_p50"]:
        return []
    ratio = teacher["seconds_p50"] / student["seconds_p50"]
    tokens = teacher["tokens_in_mean"] / max(student["tokens_in_mean"], 1)
    lines = [f"Cost per answer: the fine-tuned student answers at 1/{ratio:.1f} of the teacher's time "
             f"(p50 {student['seconds_p50']:.3f} vs {teacher['seconds_p50']:.3f} s/item on this machine), reading "
             f"1/{tokens:.1f} of its prompt tokens ({student['tokens_in_mean']:.0f} vs "
             f"{teacher['tokens_in_mean']:.0f}). Peak RSS is the whole process (the fine-tuned row also holds the "
             "base model it was merged from)."]
    money = teacher.get("money_per_1k")
    if money is not None:
        lines.append(f"The teacher is an HTTP endpoint: {_money(money)} per 1000 answers at the configured prices "
                     f"({teacher['tokens_in_mean']:.0f} tokens in, {teacher['tokens_out_mean']:.0f} "
                     "out per answer, as its usage reported); the student runs on this machine for no money, "
                     "its cost is the time above. Its memory is the server's, so not measured here.")
    return lines


def _money(x: float) -> str:
    return f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _per_class_lines(spec: TaskSpec, row: dict | None) -> list[str]:
    """Classification: where the fine-tuned student is right and wrong, label by label (small label sets)."""
    if not row or "per_class" not in row or len(row["per_class"]) > 20:
        return []
    lines = ["", "Fine-tuned student per label:", "", "| label | precision | recall | F1 | gold | predicted |",
             "|---|---|---|---|---|---|"]
    for label, m in row["per_class"].items():
        lines.append(f"| {label} | {_pct(m['precision'])} | {_pct(m['recall'])} | {_pct(m['f1'])} | {m['support']} | "
                     f"{row['predicted'].get(label, 0)} |")
    return lines


def _baseline_lines(results: dict, lm_rows: dict) -> list[str]:
    """The cheap non-LLM baselines, and a plain sentence when the fine-tuned student does not beat them."""
    baselines = results.get("baselines") or []
    if not baselines:
        return []
    lines = ["", "## Cheap baselines (no language model)", "", "| baseline | accuracy | macro-F1 |", "|---|---|---|"]
    for b in baselines:
        lines.append(f"| {b['row']} | {_with_ci(b, 'accuracy')} | {_pct(b['macro_f1'])} |")
    best = max(baselines, key=lambda b: b["accuracy"])
    tuned = lm_rows.get(Row.FINE_TUNED)
    if tuned is not None:
        verdict = "beats" if tuned["accuracy"] > best["accuracy"] else "does NOT beat"
        lines += ["", f"The fine-tuned student ({_pct(tuned['accuracy'])}) {verdict} the best cheap baseline, "
                  f"{best['row']} ({_pct(best['accuracy'])})."]
    return lines


def _forgetting_lines(forgetting: dict | None) -> list[str]:
    if not forgetting or not forgetting.get("entries"):
        return []
    lines = ["", "## Forgetting (general suite, student before vs after training, zero-shot)", "",
             "| task | metric | items | before | after | drop (points) | McNemar p | gate |", "|---|---|---|---|---|---|---|---|"]
    for e in forgetting["entries"]:
        if "skipped" in e:
            lines.append(f"| {e['task']} | | | | | | | skipped: {e['skipped']} |")
            continue
        gate = "report only" if e["max_drop"] is None else (
            f"{'pass' if e['passed'] else 'FAIL'} (max {e['max_drop']:g})")
        lines.append(f"| {e['task']} | {e['metric']} | {e['items']} | {_with_ci(e, 'before')} | {_with_ci(e, 'after')}"
                     f" | {e['drop']:+.1f} | {e['p_value']:.3g} | {gate} |")
    gated = [e for e in forgetting["entries"] if e.get("max_drop") is not None]
    if not forgetting["passed"]:
        verdict = "RUN FAILED: " + "; ".join(forgetting["failures"]) + "."
    elif gated:
        verdict = f"All {len(gated)} forgetting gates passed."
    else:
        verdict = "No forgetting gate is set (eval.forgetting.max_drop), so these numbers are reported only."
    floor = at_floor(forgetting["entries"])
    if floor:
        these = "these" if len(floor) > 1 else "this"
        verdict += (f" {', '.join(floor)}: the student scored 0 before training, so {these} cannot show "
                    "forgetting; name suite tasks it can do in eval.forgetting.tasks.")
    return lines + ["", verdict]


def _curation_lines(curation: dict) -> list[str]:
    """Each curation filter that ran, in order, with its reasons; code solution sizes before and after."""
    ran = {name: f for name, f in (curation.get("filters") or {}).items() if "skipped" not in f}
    lines = [f"- {name}: {f['dropped']} of {f['input']} dropped"
             + (f" ({', '.join(f'{k} {v}' for k, v in f['reasons'].items())})" if f["reasons"] else "")
             for name, f in ran.items()]
    stats = curation.get("code_stats")
    if stats and stats["before"]["solutions"]:
        def mean(side: str, key: str) -> str:
            value = stats[side][key]["mean"]
            return "n/a" if value is None else f"{value:g}"

        lines.append("- passing solutions entering vs leaving the simplicity filter ("
                     f"{stats['before']['solutions']} vs {stats['after']['solutions']}), mean lines "
                     f"{mean('before', 'lines')} vs {mean('after', 'lines')}, AST nodes {mean('before', 'ast_nodes')}"
                     f" vs {mean('after', 'ast_nodes')}, cyclomatic {mean('before', 'cyclomatic')} vs "
                     f"{mean('after', 'cyclomatic')}")
    lines += [f"- **{notice}**" for notice in curation.get("notices", [])]
    return [""] + lines if lines else []


def write_report(stage: StageDir, spec: TaskSpec, results: dict, curation: dict,
                 train_log: list[dict] | None = None, eval_dir: Path | None = None) -> str:
    """report.md, and report.html: the same report as one self-contained page with its plots (report_plots.py).
    `eval_dir`: the eval stage, whose per-item samples give the confusion matrix."""
    text = render_markdown(spec, results, curation)
    atomic_write_text(stage / REPORT_MD, text)
    atomic_write_text(stage / REPORT_HTML, render_html(stage.path, spec, results, text, train_log or [], eval_dir))
    return text


def render_html(folder, spec: TaskSpec, results: dict, markdown: str, train_log: list[dict],
                eval_dir: Path | None = None) -> str:
    """The Markdown report as blocks, with the plots where a reader looks: the metric and cost plots under the
    main table, the confusion matrix under the per-label table, the loss curve at the end."""
    from protege.doc import from_markdown
    from protege.report_plots import confusion_plot, cost_plot, loss_plot, metric_plot

    doc = from_markdown(markdown, folder)
    plots = folder / "plots"
    tables = [i for i, block in enumerate(doc.blocks) if block[0] == "table"]
    shown = shown_rows(results["rows"])
    glance = [("h", 2, "At a glance"),
              ("img", f"{spec.headline_metric} per row with 95% intervals",
               metric_plot(shown, spec.headline_metric, plots / "metric.png")),
              ("img", "seconds and prompt tokens per answer, each row", cost_plot(shown, plots / "cost.png"))]
    records = _finetuned_records(results, eval_dir) if kind_of(spec).LABELLED else []
    if records:
        confusion = ("img", "fine-tuned student: gold label against predicted",
                     confusion_plot(records, spec.label_names, plots / "confusion.png"))
        per_label = next((i for i in tables if doc.blocks[i][1][:1] == ["label"]), tables[-1] if tables else None)
        doc.blocks.insert(per_label + 1 if per_label is not None else len(doc.blocks), confusion)
    under_main_table = tables[0] + 1 if tables else 0
    doc.blocks[under_main_table:under_main_table] = glance
    if any("loss" in r for r in train_log):
        doc.h(2, "Training")
        doc.img("training loss per step", loss_plot(train_log, plots / "loss.png"))
    return doc.html(f"{spec.name}: distillation report")


def _finetuned_records(results: dict, eval_dir: Path | None) -> list[dict]:
    row = next((r for r in results["rows"] if r["row"] == Row.FINE_TUNED.value), None)
    if eval_dir is None or row is None or not row.get("samples"):
        return []
    path = Path(eval_dir) / row["samples"]
    return JsonlLog(path).read() if path.exists() else []

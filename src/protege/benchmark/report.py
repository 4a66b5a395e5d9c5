"""The bench report: `<bench_dir>/<name>/report.md` and `report.html` (one static page, plots embedded), with
PNG plots under `plots/` and the numbers behind them in `analysis.json`.

    write_report(out_dir, bench, analysis, records)

The report is built once as a list of blocks (headings, paragraphs, lists, tables, images) and rendered to both
Markdown and HTML. A number read from one cell links to that cell's eval stage directory (relative to the
report), a capacity number to its capacity directory, so every figure can be traced to the files it came from.
Sections whose numbers depend on measured wall-clock time say so in their heading ("measured time").
"""
from __future__ import annotations

import json
from pathlib import Path

from protege.benchmark import plots
from protege.benchmark.numbers import ALPHA, bounds, interval, percent, pts
from protege.benchmark.config import BenchConfig
from protege.doc import Doc
from protege.store import REPORT_MD, atomic_write_text


def _glance_section(doc: Doc, bench: BenchConfig, records: list[dict], names: dict) -> None:
    """One table per method: each student's fine-tuned score with each teacher's data, beside its base and beside
    each teacher's own score, so the whole matrix reads at a glance before the per-teacher detail."""
    done = [r for r in records if r["done"]]
    tasks = list(dict.fromkeys(r["task"] for r in records))
    tuned = {(r["task"], r["student"], r["teacher"], r["method"]): r for r in done}
    base = {(r["task"], r["student"]): r for r in done if r.get("base")}
    own = {(r["task"], r["teacher"]): r for r in done if r.get("teacher_eval")}
    metric = {r["task"]: r["metric"] for r in done}
    doc.h(2, "At a glance")
    doc.p("Headline metric in points: each student's better baseline (base), then the student fine-tuned on each "
          "teacher's data, and on a last row per task the teacher itself (prompted with the eval's teacher shots, "
          "on the same items); 'not run' where that cell or row has not finished. Tests and intervals are in the "
          "sections below.")
    for method in bench.methods:
        rows = []
        for t in tasks:
            label = f"{t} ({metric[t]})" if t in metric else t
            for m in bench.students:
                b = base.get((t, m))
                cells = [tuned.get((t, m, teacher, method)) for teacher in bench.teachers]
                rows.append([label, names[m], doc.link(pts(b["base"]["value"]), b["eval_dir"]) if b else "not run"]
                            + [doc.link(pts(c["tuned"]["value"]), c["eval_dir"]) if c else "not run" for c in cells])
            rows.append([label, "the teacher itself", ""] + [
                doc.link(pts(own[(t, teacher)]["teacher_eval"]["value"]), own[(t, teacher)]["eval_dir"])
                if (t, teacher) in own else "not run" for teacher in bench.teachers])
        if len(bench.methods) > 1:
            doc.p(f"Method {method}:")
        doc.table(["task (metric)", "student", "base"] + [f"teacher {names[t]}" for t in bench.teachers], rows)


def _test_text(test: dict | None) -> str:
    return "n/a" if test is None else f"{test['p_value']:.3g} ({test['method']}, {test['n']} items)"


def _slice_section(doc: Doc, s: dict, i: int, names: dict, records: dict) -> None:
    teacher = names[s["teacher"]]
    doc.h(2, f"Teacher {teacher}, method {s['method']}")
    if "tuned_rank" not in s:
        doc.p(" ".join(s["answers"]))
    if s["left_out"]:
        doc.p("Left out of this ranking (a task not finished): " + ", ".join(names[m] for m in s["left_out"]) + ".")
    if "tuned_rank" not in s:
        return
    tasks, students = s["tasks"], s["students"]
    doc.h(3, "Scores per cell")
    doc.p("Headline metric in points (0-100) with its 95% bootstrap interval over test items; base = the better of "
          "zero- and few-shot; each number links to the eval stage it was read from.")
    rows = []
    for m in students:
        for t in tasks:
            r = records[(s["teacher"], s["method"], m, t)]
            link = r["eval_dir"]
            ci = r["tuned"]["ci"]
            rows.append([names[m], f"{t} ({r['metric']})", doc.link(pts(r["zero"]["value"]), link),
                         doc.link(pts(r["few"]["value"]), link), r["base_row"],
                         doc.link(f"{pts(r['tuned']['value'])} [{pts(ci[0])}, {pts(ci[1])}]" if ci
                                  else pts(r["tuned"]["value"]), link),
                         pts(s["plasticity"][m][t], True),
                         doc.link(pts(r["teacher_eval"]["value"]), link) if r["teacher_eval"] else "n/a",
                         doc.link("run", link)])
    doc.table(["student", "task (metric)", "zero-shot", "few-shot", "base", "fine-tuned", "plasticity", "teacher",
               "eval stage"], rows)
    for key, title, what in (("tuned_rank", "Ranks after fine-tuning", "fine-tuned score"),
                             ("plasticity_rank", "Plasticity ranks", "fine-tuned minus base"),
                             ("base_rank", "Baseline ranks", "base (better of zero-/few-shot)")):
        doc.h(3, title)
        r = s[key]
        doc.p(f"Rank within each task by {what} (1 = best, ties share the average rank); mean rank with a 95% "
              "t-interval over tasks and a 95% percentile bootstrap over tasks.")
        rows = [[names[m]] + [doc.link(f"{r['ranks'][t][m]:g}", records[(s["teacher"], s["method"], m, t)]["eval_dir"])
                              for t in tasks]
                + [interval(r["t"][m]), bounds(r["bootstrap"][m])]
                for m in r["order"]]
        doc.table(["student"] + tasks + ["mean rank [t 95%]", "bootstrap 95%"], rows)
        if key == "tuned_rank":
            doc.img("mean rank with 95% intervals", plots.mean_rank_plot(s, names, doc.out / "plots" / f"rank-{i}.png"))
        if key == "plasticity_rank":
            doc.img("plasticity per task", plots.plasticity_plot(s, names, doc.out / "plots" / f"plasticity-{i}.png"))
    doc.h(3, "Friedman and Nemenyi")
    fr = s["friedman"]
    if fr is None:
        doc.p("Not enough tasks or students: Friedman and Nemenyi need at least 2 tasks and 2 students "
              f"(this slice has {len(tasks)} and {len(students)}).")
    else:
        doc.p(f"Friedman chi2 = {fr['statistic']:.3f} (df {fr['df']}), p = {fr['p_value']:.3g}; Iman-Davenport "
              f"F = {fr['iman_davenport_f']:.3g}, p = {fr['iman_davenport_p']:.3g}. Nemenyi critical difference at "
              f"{ALPHA}: {fr['nemenyi_cd']:.3f}. Groups not significantly different: "
              + "; ".join("{" + ", ".join(names[m] for m in g) + "}" for g in fr["nemenyi_groups"]) + ".")
    doc.h(3, "Students vs the teacher")
    doc.p("Paired test on per-item scores, items matched by id (exact McNemar for right/wrong items, Wilcoxon "
          "signed-rank otherwise); gap closed = (fine-tuned - base) / (teacher - base).")
    rows = [[names[v["student"]], v["task"], doc.link(pts(v["tuned"]), v["eval_dir"]),
             doc.link(pts(v["teacher_score"]), v["eval_dir"]),
             pts(None if v["teacher_score"] is None else v["tuned"] - v["teacher_score"], True),
             _test_text(v["test"]), percent(v["gap_closed"])]
            for v in s["vs_teacher"]]
    doc.table(["student", "task", "fine-tuned", "teacher", "difference", "p (test, items)", "gap closed"], rows)
    doc.img("students vs teacher per task", plots.vs_teacher_plot(s, names, doc.out / "plots" / f"vs-teacher-{i}.png"))


def forgetting_floor(records: list[dict]) -> dict[str, tuple[int, int]]:
    """{suite task: (cells where the student scored 0 on it before training, cells that measured it)} for the
    tasks at 0 in at least one finished cell (records collected before this was kept have neither list)."""
    done = [r["forgetting"] for r in records if r["done"] and r.get("forgetting")]
    tasks = dict.fromkeys(t for f in done for t in f.get("floor", []))
    return {t: (sum(t in f.get("floor", []) for f in done), sum(t in f.get("measured", []) for f in done))
            for t in tasks}


def _teacher_section(doc: Doc, analysis: dict, records: list[dict]) -> None:
    names = analysis["names"]
    doc.h(2, "Teacher selection")
    doc.p("For each student, the teachers side by side: mean fine-tuned metric over the tasks every teacher has "
          "finished (each finished task's score is listed beside it), the largest forgetting "
          "drop on the general suite (points, positive = worse), and the capacity-match NLL of the student on that "
          "teacher's curated data (nats per answer token, measured before training; lower = closer to the "
          "student's own style), averaged only over the tasks where every teacher has curated data. Pick: highest "
          "mean metric among teachers whose forgetting gates passed, ties to the lower NLL.")
    doc.ul([c["answer"] for c in analysis["teacher_choice"]])
    rows = []
    for c in analysis["teacher_choice"]:
        for o in c["options"]:
            per_task = ", ".join(f"{t} {pts(v['value'])}" for t, v in o["per_task"].items())
            rows.append([names[c["student"]], c["method"], names[o["teacher"]], pts(o["shared_metric"]),
                         per_task or "n/a",
                         "n/a" if o["max_drop"] is None else f"{o['max_drop']:+.1f}",
                         "yes" if o["gates_passed"] else "FAILED",
                         "n/a" if o["nll"] is None else
                         f"{o['nll']:.3f} ({o['nll_tokens']} tokens; {', '.join(o['nll_tasks'])})",
                         "<- pick" if o["teacher"] == c["pick"] else ""])
    doc.table(["student", "method", "teacher", "mean metric", "per task", "worst forgetting drop", "gates",
               "capacity NLL", ""], rows)
    floor = forgetting_floor(records)
    if floor:
        doc.p("A suite task the student scored 0 on before training cannot show forgetting (its drop cannot be "
              "above 0), so the forgetting column says nothing about it: "
              + "; ".join(f"{t} in {n} of {m} cells that measured it" for t, (n, m) in floor.items()) + ".")
    _head_to_head(doc, analysis.get("head_to_head") or [], names)
    doc.h(3, "Capacity match (measured before training)")
    seen, rows = set(), []
    for r in records:
        key = (r["student"], r["task"], r["teacher"])
        if key in seen:
            continue
        seen.add(key)
        cap = r["capacity"]
        rows.append([names[r["student"]], r["task"], names[r["teacher"]],
                     doc.link(f"{cap['nll']:.3f}", cap["dir"]) if cap and cap["nll"] is not None else "n/a",
                     str(cap["tokens"]) if cap else "n/a"])
    doc.table(["student", "task", "teacher", "NLL per answer token", "answer tokens"], rows)


def _head_to_head(doc: Doc, duels: list[dict], names: dict) -> None:
    if not duels:
        return
    doc.h(3, "Teachers head to head (per task, same test items)")
    doc.p("On each task, the student taught by the best-scoring teacher against the same student taught by each "
          "other teacher, item by item: exact McNemar on right/wrong items (b = items only the first gets right, "
          "c = only the second), Wilcoxon signed-rank on graded ones; separable at p < 0.05.")
    rows = []
    for d in duels:
        test = d["test"]
        rows.append([names[d["student"]], d["method"], d["task"],
                     doc.link(f"{names[d['best']]} {pts(d['best_value'])}", d["best_dir"]),
                     doc.link(f"{names[d['other']]} {pts(d['other_value'])}", d["other_dir"]),
                     "n/a" if test is None or "b" not in test else f"{test['b']} / {test['c']}",
                     _test_text(test), "yes" if d["separable"] else "no"])
    doc.table(["student", "method", "task", "best teacher's student", "other teacher's student", "b / c",
               "p (test, items)", "separable"], rows)


def _cost_section(doc: Doc, analysis: dict) -> None:
    sel = analysis["selection"]
    doc.h(2, "Metric vs inference cost (measured time)")
    left_out = "; ".join(f"{c['name']} (no {', '.join(c['missing'])})" for c in sel.get("partial", []))
    if left_out:
        doc.p(f"Not compared until measured on every task: {left_out}.")
    if not sel["candidates"]:
        doc.p("No candidate was measured on every task.")
        return
    doc.p("Each candidate averaged over every task: headline metric (points), median seconds per test item as "
          "measured during evaluation on this machine, and weights in MiB as loaded (a LoRA student is merged).")
    doc.img("metric vs seconds per item", plots.cost_plot(sel["candidates"], doc.out / "plots" / "cost.png"))
    doc.table(["candidate", "mean metric", "s/item (p50)", "weights MiB"],
              [[c["name"], doc.link(pts(c["metric"]), c["eval_dir"]),
                "n/a" if c["seconds"] is None else f"{c['seconds']:.4f}",
                "n/a" if c["weights_mb"] is None else f"{c['weights_mb']:.4g}"] for c in sel["candidates"]])
    doc.h(2, "Model selection (uses measured time)")
    doc.table(["scenario", "pick"], [[k, v] for k, v in sel["picks"].items()])


def _reads_section(doc: Doc, reads: dict | None) -> None:
    if reads is None:
        return
    doc.h(2, "Test-set reads")
    total = sum(n for by_task in reads["by_purpose"].values() for n in by_task.values())
    parts = [f"{sum(t.values())} {purpose} ({', '.join(f'{task} {n}' for task, n in t.items())})"
             for purpose, t in reads["by_purpose"].items()]
    doc.p(f"The test-access logs of the bench's {_count(reads['eval_stages'], 'eval stage')} and "
          f"{_count(reads['curate_stages'], 'curate stage')} record {_count(total, 'read')} of a test set: "
          f"{'; '.join(parts) or 'none'}. An eval stage logs one read per row it scores or adopts and per "
          "forgetting-suite task, so rows shared between cells count once per cell; a curate stage reads each test "
          "set it decontaminates against once. evaluate/test_access.py refuses any other purpose. Nothing the "
          "cells train with (sizes, epochs, checkpoints: all fixed in the config) was chosen on a test read; the "
          "answers above are read off the test results, as a benchmark's are.")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' * (n != 1)}"


def build(bench: BenchConfig, analysis: dict, records: list[dict], out: Path) -> Doc:
    names = analysis["names"]
    doc = Doc(out)
    tasks = list(dict.fromkeys(r["task"] for r in records))
    doc.h(1, f"Bench {bench.name}: " + " x ".join(_count(n, what) for n, what in (
        (len(tasks), "task"), (len(bench.teachers), "teacher"), (len(bench.students), "student"),
        (len(bench.methods), "method"))))
    done = sum(r["done"] for r in records)
    doc.p(f"{done} of {len(records)} cells finished. Metrics are each task's headline metric in points (0-100). "
          "Base = the better of each student's zero-shot and few-shot baselines on each task (so plasticity counts "
          "only what fine-tuning adds over the best prompting). Mean ranks carry two 95% intervals over tasks: a "
          "t-interval and a percentile bootstrap. Numbers link to the run directory they were read from.")
    _glance_section(doc, bench, records, names)
    doc.h(2, "Answers")
    for s in analysis["slices"]:
        doc.h(3, f"With teacher {names[s['teacher']]} ({s['method']})")
        doc.ul(s["answers"])
    doc.h(3, "Which teacher")
    doc.ul([c["summary"] for c in analysis["teacher_choice"]])
    if analysis["failed"]:
        doc.h(2, "Cells not finished")
        doc.table(["task", "teacher", "student", "method", "error", "eval stage"],
                  [[f["task"], names[f["teacher"]], names[f["student"]], f["method"], f["error"] or "",
                    doc.link("dir", f["eval_dir"])] for f in analysis["failed"]])
    by_key = {(r["teacher"], r["method"], r["student"], r["task"]): r for r in records if r["done"]}
    for i, s in enumerate(analysis["slices"]):
        _slice_section(doc, s, i, names, by_key)
    _teacher_section(doc, analysis, records)
    _cost_section(doc, analysis)
    _reads_section(doc, analysis.get("test_reads"))
    doc.h(2, "Models")
    doc.table(["name", "model"], [[v, k] for k, v in names.items()])
    return doc


def write_report(out: Path, bench: BenchConfig, analysis: dict, records: list[dict]) -> Path:
    out = Path(out)
    doc = build(bench, analysis, records, out)
    atomic_write_text(out / "analysis.json", json.dumps({"records": records, **analysis}, indent=2, default=str) + "\n")
    atomic_write_text(out / REPORT_MD, doc.markdown())
    atomic_write_text(out / "report.html", doc.html(f"Bench {bench.name}"))
    return out

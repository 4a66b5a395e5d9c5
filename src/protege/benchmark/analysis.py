"""The bench's analysis: ranks, intervals, plasticity, tests, and the five questions answered from the numbers.

    analysis = analyse(records, tasks, students, resamples=10000, seed=0)   # records from collect.py

Students are compared within each (teacher, method) slice, on the tasks every compared student finished
(a student missing a task is left out of that slice's ranking, and said so). Conventions, stated in the report:
- base = the better of the student's zero-shot and few-shot baselines on each task, so plasticity (tuned - base)
  counts only what fine-tuning adds over the best prompting of the untouched student;
- mean ranks carry two 95% intervals over tasks: a t-interval and a percentile bootstrap (stats.mean_rank_ci);
- student vs teacher: exact McNemar on per-item right/wrong, Wilcoxon signed-rank on graded items, at 0.05;
- Friedman and Nemenyi need at least 2 tasks and 2 students;
- which teacher for each student, and the teachers' students tested head to head: teachers.py.
"""
from __future__ import annotations

from collections import Counter

from protege.benchmark import rank_tests as rt
from protege.benchmark import stats as st
from protege.benchmark.collect import slices, table
from protege.benchmark.matrix import short_names
from protege.benchmark.numbers import ALPHA, bounds, interval, mean_present, percent, pts
from protege.benchmark.teachers import head_to_head, teacher_choice


def _ranking(scores: dict, resamples: int, seed: int) -> dict:
    """Per-task ranks and mean-rank intervals (t and bootstrap) of a complete {student: {task: value}} table."""
    ranks = st.ranks_per_task(scores)
    t = st.mean_rank_ci(ranks, method="t")
    boot = st.mean_rank_ci(ranks, method="bootstrap", resamples=resamples, seed=seed)
    order = sorted(t, key=lambda m: (t[m][0], list(scores).index(m)))
    return {"ranks": ranks, "t": t, "bootstrap": boot, "order": order}


def _best(ranking: dict) -> list[str]:
    t = ranking["t"]
    best = t[ranking["order"][0]][0]
    return [m for m in ranking["order"] if abs(t[m][0] - best) < 1e-12]


def analyse_slice(records: list[dict], teacher: str, method: str, tasks: list[str], students: list[str],
                  names: dict[str, str], resamples: int, seed: int) -> dict:
    tuned = table(records, "tuned", teacher, method)
    base = table(records, "base", teacher, method)
    tasks = [t for t in tasks if any(t in row for row in tuned.values())]
    complete = [s for s in students if s in tuned and all(t in tuned[s] for t in tasks)]
    out = {"teacher": teacher, "method": method, "tasks": tasks, "students": complete,
           "left_out": [s for s in students if s not in complete]}
    cells = {(r["student"], r["task"]): r for r in records
             if r["teacher"] == teacher and r["method"] == method and r["done"]}
    out["vs_teacher"] = [_vs_teacher(cells[(s, t)]) for s in complete for t in tasks]
    if not complete or not tasks:
        out["answers"] = [f"No student finished every task with teacher {names[teacher]} ({method}); nothing to rank."]
        return out
    tuned = {s: {t: tuned[s][t] for t in tasks} for s in complete}
    base = {s: {t: base[s][t] for t in tasks} for s in complete}
    plastic = st.plasticity(tuned, base)
    out.update(tuned=tuned, base=base, plasticity=plastic,
               tuned_rank=_ranking(tuned, resamples, seed), plasticity_rank=_ranking(plastic, resamples, seed),
               base_rank=_ranking(base, resamples, seed))
    if len(tasks) >= 2 and len(complete) >= 2:
        fr = rt.friedman(tuned)
        cd = rt.nemenyi_cd(len(complete), len(tasks), ALPHA)
        out["friedman"] = {**fr, "nemenyi_cd": cd, "nemenyi_groups": rt.nemenyi_groups(fr["mean_ranks"], cd)}
    else:
        out["friedman"] = None
    out["answers"] = _answers(out, names)
    return out


def _vs_teacher(rec: dict) -> dict:
    teacher = rec["teacher_eval"]
    row = {"student": rec["student"], "task": rec["task"], "tuned": rec["tuned"]["value"],
           "base": rec["base"]["value"], "eval_dir": rec["eval_dir"], "teacher_score": None, "gap_closed": None,
           "test": rec["vs_teacher"]}
    if teacher:
        row["teacher_score"] = teacher["value"]
        row["gap_closed"] = st.gap_closed(row["tuned"], row["base"], teacher["value"])
    return row


def _significance(out: dict, best: str, name: dict[str, str]) -> str:
    fr = out["friedman"]
    if fr is None:
        return ("Friedman/Nemenyi: not enough tasks" if len(out["tasks"]) < 2 else
                "Friedman/Nemenyi: not enough students") + " (they need at least 2 tasks and 2 students)."
    verdict = "differ" if fr["p_value"] < ALPHA else "do not differ significantly"
    text = (f"Friedman chi2 = {fr['statistic']:.2f}, p = {fr['p_value']:.3g} over {fr['n_tasks']} tasks: the "
            f"students' ranks {verdict} at {ALPHA}.")
    others = [m for m in out["students"] if m != best]
    behind = [m for m in others if fr["mean_ranks"][m] - fr["mean_ranks"][best] >= fr["nemenyi_cd"]]
    close = [m for m in others if m not in behind]
    text += f" Nemenyi CD = {fr['nemenyi_cd']:.2f}: {name[best]} is "
    text += (f"significantly ahead of {', '.join(name[m] for m in behind)}" if behind
             else "significantly ahead of no one")
    return text + (f"; not distinguishable from {', '.join(name[m] for m in close)}." if close else ".")


def _answers(out: dict, name: dict[str, str]) -> list[str]:
    n = len(out["tasks"])
    where = f"over {n} task{'s' * (n != 1)}"  # the report lists these under a heading naming the teacher

    def ranked(key: str) -> tuple[list[str], str]:
        r = out[key]
        best = _best(r)
        ci = "; ".join(f"{name[m]}: mean rank {interval(r['t'][m])}"
                       + ("" if n < 2 else f" t-interval, bootstrap {bounds(r['bootstrap'][m])}") for m in best)
        who = " and ".join(name[m] for m in best) + (" (tied)" if len(best) > 1 else "")
        return best, f"{who} ({ci})"

    best, text = ranked("tuned_rank")
    answers = [f"Strongest after fine-tuning {where}: {text}. " + _significance(out, best[0], name)]
    plastic, text = ranked("plasticity_rank")
    gain = mean_present(out["plasticity"][plastic[0]].values())
    answers.append(f"Most plastic (largest gain over its own best baseline): {text}; mean gain {pts(gain, True)} "
                   "points.")
    _, text = ranked("base_rank")
    answers.append(f"Best baseline (better of zero-/few-shot, before any fine-tuning): {text}.")
    student = best[0]
    parts = []
    for row in out["vs_teacher"]:
        if row["student"] != student:
            continue
        test = row["test"]
        if row["teacher_score"] is None or test is None:
            parts.append(f"{row['task']}: the teacher was not evaluated (eval.evaluate_teacher)")
            continue
        diff = row["tuned"] - row["teacher_score"]
        if test["p_value"] < ALPHA:
            verdict = "yes, it beats the teacher" if diff > 0 else "no, the teacher is significantly better"
        else:
            verdict = "no significant difference from the teacher"
        gap = "" if row["gap_closed"] is None else f", {percent(row['gap_closed'])} of the gap closed"
        parts.append(f"{row['task']}: {pts(row['tuned'])} vs {pts(row['teacher_score'])} ({pts(diff, True)} points, "
                     f"{test['method']} p = {test['p_value']:.3g}, {test['n']} items): {verdict}{gap}")
    answers.append(f"Does the best student ({name[student]}) catch the teacher? " + "; ".join(parts) + ".")
    return answers


def selection(records: list[dict], tasks: list[str], names: dict[str, str]) -> dict:
    """Deployment candidates averaged over tasks (only those measured on every task), and the pick per scenario."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        if not r["done"]:
            continue
        groups.setdefault(("fine-tuned", r["student"], r["teacher"], r["method"]), []).append(
            r["tuned"] | {"task": r["task"], "eval_dir": r["eval_dir"]})
    candidates = [_candidate(key, rows, tasks, names) for key, rows in groups.items()]
    # A student's baseline and a teacher's score do not depend on the cell; the first finished cell gives them.
    for field, kind in (("base", "baseline"), ("teacher_eval", "teacher")):
        seen: dict[tuple, dict] = {}
        for r in records:
            if r["done"] and r.get(field):
                who = r["student"] if kind == "baseline" else r["teacher"]
                seen.setdefault((kind, who), {}).setdefault(r["task"], r[field] | {"task": r["task"],
                                                                                   "eval_dir": r["eval_dir"]})
        candidates += [_candidate(k, list(v.values()), tasks, names) for k, v in seen.items()]
    partial = [c for c in candidates if c["missing"]]
    candidates = [c for c in candidates if not c["missing"]]
    picks = {}
    if candidates:
        picks["highest metric"] = max(candidates, key=lambda c: c["metric"])
        timed = [c for c in candidates if c["seconds"]]
        if timed:
            picks["tight compute (metric per inference second)"] = max(timed, key=lambda c: c["metric"] / c["seconds"])
        baselines = [c for c in candidates if c["kind"] == "baseline"]
        if baselines:
            picks["cannot fine-tune (best student baseline)"] = max(baselines, key=lambda c: c["metric"])
        sized = [c for c in candidates if c["weights_mb"]]
        if sized:
            smallest = min(c["weights_mb"] for c in sized)
            picks["edge (smallest weights)"] = max((c for c in sized if c["weights_mb"] <= smallest * 1.01),
                                                   key=lambda c: c["metric"])
    return {"candidates": candidates, "picks": {k: v["name"] for k, v in picks.items()},
            "partial": [{"name": c["name"], "missing": c["missing"]} for c in partial]}


def _candidate(key: tuple, rows: list[dict], tasks: list[str], names: dict[str, str]) -> dict:
    """A candidate averaged over its tasks; `missing` lists the tasks it has no score on (then it is not ranked)."""
    kind, who = key[0], names[key[1]]
    name = {"fine-tuned": lambda: f"{who} + LoRA ({key[3]}, teacher {names[key[2]]})",
            "baseline": lambda: f"{who} (best baseline)", "teacher": lambda: f"{who} (teacher, prompted)"}[kind]()
    seconds = [r["seconds_p50"] for r in rows]
    measured = {r["task"] for r in rows}
    return {"kind": kind, "name": name, "metric": mean_present(r["value"] for r in rows),
            "seconds": mean_present(seconds) if all(s is not None for s in seconds) else None,
            "weights_mb": rows[0]["weights_mb"], "eval_dir": rows[0]["eval_dir"],
            "missing": [t for t in tasks if t not in measured]}


def count_test_reads(records: list[dict]) -> dict | None:
    """The test-set reads the bench's stages logged (collect.stage_reads): each cell's eval stage (its rows, adopted
    or computed, and forgetting-suite tasks) and each distinct curate stage (decontamination). None for records
    collected before reads were counted."""
    if not any("test_reads" in r for r in records):
        return None
    evals = [r["test_reads"]["eval"] for r in records if "test_reads" in r]
    curates = {r["test_reads"]["curate"]["dir"]: r["test_reads"]["curate"]["reads"] for r in records
               if "test_reads" in r}
    totals: dict[str, Counter] = {}
    for reads in evals + list(curates.values()):
        for purpose, by_task in reads.items():
            totals.setdefault(purpose, Counter()).update(by_task)
    return {"eval_stages": sum(1 for e in evals if e), "curate_stages": sum(1 for c in curates.values() if c),
            "by_purpose": {p: dict(sorted(t.items())) for p, t in sorted(totals.items())}}


def analyse(records: list[dict], tasks: list[str], students: list[str], teachers: list[str], methods: list[str],
            resamples: int = 10000, seed: int = 0) -> dict:
    names = short_names(list(dict.fromkeys(students + teachers)))
    duels = head_to_head(records, students, methods, names)
    return {
        "names": names,
        "slices": [analyse_slice(records, t, m, tasks, students, names, resamples, seed) for t, m in slices(records)],
        "teacher_choice": teacher_choice(records, students, methods, teachers, names, duels),
        "head_to_head": duels,
        "selection": selection(records, tasks, names),
        "test_reads": count_test_reads(records),
        "failed": [{k: r[k] for k in ("task", "teacher", "student", "method", "error", "eval_dir")}
                   for r in records if not r["done"]],
    }

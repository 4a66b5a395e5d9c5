"""The bench's teacher axis: which teacher each student should learn from, and the teachers' students head to head.

    duels = head_to_head(records, students, methods, names)                # records from collect.py
    choices = teacher_choice(records, students, methods, teachers, names, duels)   # answers cite the duels

teacher_choice compares teachers on the tasks every one of them finished for that student and method, so a bench
still running gives a provisional pick over what has finished (and says so) rather than none, and a teacher is
never ranked on an easier set of tasks than another. head_to_head tests, on each task, the best teacher's student
against each other teacher's student on the same test items (exact McNemar on right/wrong items, Wilcoxon on graded
ones): a difference of means across teachers says nothing until it is tested item by item.
"""
from __future__ import annotations

import math
from typing import Sequence

from protege.benchmark.numbers import ALPHA, mean_present, pts
from protege.benchmark.rank_tests import paired_test

def teacher_choice(records: list[dict], students: list[str], methods: list[str], teachers: list[str],
                   names: dict[str, str], duels: Sequence[dict] = ()) -> list[dict]:
    """For each (student, method): each teacher's mean fine-tuned metric, worst forgetting drop and mean capacity
    NLL, and the pick: highest mean metric among teachers that passed every forgetting gate (all of them if none
    did), ties to the lower NLL. The pick's metric (`shared_metric`) is over the tasks every teacher finished
    (`shared_tasks`; fewer than the bench's tasks makes the pick provisional); `metric` is over whatever a teacher
    finished, for the table. The NLL is over the tasks where every teacher has curated data to measure it on (a
    teacher whose data was all dropped on a task has no NLL there, and a mean over different tasks would compare
    the tasks, not the teachers)."""
    out = []
    for student in students:
        for method in methods:
            rows = {t: [r for r in records if (r["student"], r["method"], r["teacher"]) == (student, method, t)]
                    for t in teachers}
            common = _every(rows, lambda r: r["capacity"] and r["capacity"]["nll"] is not None)
            finished = _every(rows, lambda r: r["done"])
            all_tasks = sorted({r["task"] for mine in rows.values() for r in mine})
            options = [_option(teacher, rows[teacher], common, finished) for teacher in teachers]
            mine = [d for d in duels if (d["student"], d["method"]) == (student, method)]
            ranked = [o for o in options if o["shared_metric"] is not None]
            eligible = [o for o in ranked if o["gates_passed"]] or ranked
            pick = max(eligible, key=lambda o: (o["shared_metric"],
                                                -(o["nll"] if o["nll"] is not None else math.inf)), default=None)
            out.append({"student": student, "method": method, "options": options, "shared_tasks": sorted(finished),
                        "provisional": pick is not None and sorted(finished) != all_tasks,
                        "pick": pick["teacher"] if pick else None,
                        "answer": _answer(student, method, options, pick, sorted(finished), all_tasks, names)
                        + _duels_text(mine, names),
                        "summary": _summary(student, method, options, pick, sorted(finished), all_tasks, mine,
                                            names)})
    return out


def _every(rows: dict[str, list[dict]], keep) -> set[str]:
    """The tasks on which every teacher has a record that `keep` accepts."""
    if not rows:
        return set()
    return set.intersection(*({r["task"] for r in mine if keep(r)} for mine in rows.values()))


def _option(teacher: str, mine: list[dict], common: set[str], finished: set[str]) -> dict:
    done = [r for r in mine if r["done"]]
    drops = [r["forgetting"]["max_drop"] for r in done if r["forgetting"]["max_drop"] is not None]
    shared = [r for r in mine if r["task"] in common]
    return {
        "teacher": teacher, "tasks": len(done), "of": len(mine),
        "metric": mean_present(r["tuned"]["value"] for r in done),
        "shared_metric": mean_present(r["tuned"]["value"] for r in done if r["task"] in finished),
        "per_task": {r["task"]: {"value": r["tuned"]["value"], "eval_dir": r["eval_dir"]} for r in done},
        "max_drop": max(drops) if drops else None,
        "gates_passed": all(r["forgetting"]["passed"] for r in done),
        "nll": mean_present(r["capacity"]["nll"] for r in shared),
        "nll_tokens": sum(r["capacity"]["tokens"] for r in shared),
        "nll_tasks": sorted(common),
    }


def _rivals(options: list[dict], pick: dict) -> list[dict]:
    """The teachers the pick was chosen over (those with a mean on the shared tasks), highest mean first."""
    return sorted((o for o in options if o is not pick and o["shared_metric"] is not None),
                  key=lambda o: -o["shared_metric"])


def _answer(student: str, method: str, options: list[dict], pick: dict | None, shared: list[str],
            all_tasks: list[str], name: dict[str, str]) -> str:
    if pick is None:
        return f"Teacher for {name[student]} ({method}): no task has been finished with every teacher yet."
    others = _rivals(options, pick)

    def describe(o: dict) -> str:
        drop = "n/a" if o["max_drop"] is None else f"{o['max_drop']:+.1f}"
        nll = "n/a" if o["nll"] is None else f"{o['nll']:.2f}"
        return (f"mean {pts(o['shared_metric'])}, worst forgetting drop {drop} points, capacity NLL {nll} "
                f"nats/token on {', '.join(o['nll_tasks']) or 'no task both teachers have data for'}")

    text = f"Teacher for {name[student]} ({method}): {name[pick['teacher']]} ({describe(pick)})"
    if others:
        text += "; vs " + "; ".join(f"{name[o['teacher']]} ({describe(o)})" for o in others)
    else:
        text += "; the only teacher in this bench"
    if shared != all_tasks:
        text += (f". Provisional: over {', '.join(shared)}, the {len(shared)} of {len(all_tasks)} tasks every "
                 "teacher has finished")
    return text + "."


def _summary(student: str, method: str, options: list[dict], pick: dict | None, shared: list[str],
             all_tasks: list[str], duels: list[dict], name: dict[str, str]) -> str:
    """The pick in two sentences for the report's answers: its mean beside the others', then how the pick's student
    fares against each other teacher's on the same items (the forgetting and NLL columns stay in the table)."""
    if pick is None:
        return f"Teacher for {name[student]} ({method}): none yet (no task finished with every teacher)."
    scope = f"over {', '.join(shared)}" + ("" if shared == all_tasks else
                                           f" (provisional: {len(shared)} of {len(all_tasks)} tasks so far)")
    others = _rivals(options, pick)
    text = f"Teacher for {name[student]} ({method}): {name[pick['teacher']]}, mean {pts(pick['shared_metric'])} {scope}"
    text += ("" if not others else ", against " + " and ".join(f"{name[o['teacher']]} {pts(o['shared_metric'])}"
                                                                for o in others)) + "."
    said = []
    for d in duels:
        if pick["teacher"] not in (d["best"], d["other"]) or d["test"] is None:
            continue
        ahead = d["best"] == pick["teacher"]
        rival = d["other"] if ahead else d["best"]
        verdict = ("ahead" if ahead else "behind") if d["separable"] else "not separable"
        said.append(f"{d['task']} vs {name[rival]} {verdict} (p = {d['test']['p_value']:.3g})")
    if said:
        text += " Its student on the same test items: " + "; ".join(said) + "."
    return text


def head_to_head(records: list[dict], students: list[str], methods: list[str], names: dict[str, str]) -> list[dict]:
    """Per (student, method, task) with two or more teachers finished: the best teacher's student (highest
    fine-tuned metric; ties to config order) against each other teacher's, paired on the test items both scored.
    Records without per-item scores (`tuned_items`, from collect.py) are left out."""
    out = []
    for student in students:
        for method in methods:
            done = [r for r in records if (r["student"], r["method"]) == (student, method)
                    and r["done"] and r.get("tuned_items")]
            for task in dict.fromkeys(r["task"] for r in done):
                cells = [r for r in done if r["task"] == task]
                if len(cells) < 2:
                    continue
                best = max(cells, key=lambda r: r["tuned"]["value"])
                for other in (r for r in cells if r is not best):
                    ids = [i for i in best["tuned_items"] if i in other["tuned_items"]]
                    test = paired_test([best["tuned_items"][i] for i in ids],
                                       [other["tuned_items"][i] for i in ids]) if ids else None
                    out.append({"student": student, "method": method, "task": task, "best": best["teacher"],
                                "other": other["teacher"], "best_value": best["tuned"]["value"],
                                "other_value": other["tuned"]["value"], "best_dir": best["eval_dir"],
                                "other_dir": other["eval_dir"], "test": test,
                                "separable": test is not None and test["p_value"] < ALPHA})
    return out


def _duels_text(duels: list[dict], name: dict[str, str]) -> str:
    if not duels:
        return ""
    return (" Head to head, the best teacher's student against each other's on the same items: "
            + "; ".join(duel_text(d, name) for d in duels) + ".")


def duel_text(d: dict, name: dict[str, str]) -> str:
    """One head-to-head in words, e.g. 'trec6: Q 70.6 vs S 48.2, mcnemar-exact p = 1e-23 (126 vs 14 items)'."""
    test = d["test"]
    text = f"{d['task']}: {name[d['best']]} {pts(d['best_value'])} vs {name[d['other']]} {pts(d['other_value'])}"
    if test is None:
        return text + " (no test items in common)"
    counts = f", {test['b']} vs {test['c']} items" if "b" in test else ""
    verdict = "separable" if d["separable"] else "not separable"
    return text + f" ({test['method']} p = {test['p_value']:.3g}, {test['n']} items{counts}: {verdict})"

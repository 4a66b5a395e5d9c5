"""The bench analysis on hand-made cell records: the five answers say what the numbers say."""
import math

import pytest

from protege.benchmark import stats
from protege.benchmark.analysis import analyse

TASKS = ["t1", "t2", "t3"]


def rec(student, task, tuned, base, teacher="T1", teacher_score=0.8, p=0.5, drop=0.0, passed=True, nll=2.0,
        seconds=0.01, weights=100.0, done=True):
    row = lambda v, s=seconds, w=weights: {"value": v, "ci": [v - 0.1, v + 0.1], "seconds_p50": s,  # noqa: E731
                                           "weights_mb": w, "model": student}
    r = {"task": task, "teacher": teacher, "student": student, "method": "sft", "done": done, "error": None,
         "eval_dir": f"/runs/{task}/eval-{student}-{teacher}", "metric": "accuracy",
         "capacity": {"nll": nll, "tokens": 100, "dir": f"/runs/{task}/capacity-{student}-{teacher}"}}
    if not done:
        return r | {"error": "RuntimeError: boom"}
    return r | {"tuned": row(tuned), "zero": row(base), "few": row(base - 0.05), "base": row(base), "base_row": "zero-shot",
                "teacher_eval": row(teacher_score, 0.1, 1000.0),
                "vs_teacher": {"p_value": p, "method": "mcnemar-exact", "n": 100, "mean_difference": tuned - teacher_score},
                "forgetting": {"max_drop": drop, "worst": "suite", "passed": passed}}


# A ranks first on every task after tuning, B second, C third; C gains most from tuning; C has the best base.
SCORES = {"A": {"t1": (0.90, 0.50), "t2": (0.70, 0.40), "t3": (0.60, 0.30)},
          "B": {"t1": (0.80, 0.55), "t2": (0.65, 0.45), "t3": (0.50, 0.35)},
          "C": {"t1": (0.70, 0.10), "t2": (0.60, 0.05), "t3": (0.45, 0.08)}}
P_VALUES = {"t1": 0.01, "t2": 0.5, "t3": 0.001}


def records(scores=SCORES):
    return [rec(s, t, tuned, base, p=P_VALUES[t]) for s, row in scores.items() for t, (tuned, base) in row.items()]


def test_answers_name_the_strongest_most_plastic_and_best_baseline_with_their_intervals():
    out = analyse(records(), TASKS, ["A", "B", "C"], ["T1"], ["sft"], resamples=2000)
    s = out["slices"][0]
    tuned = {m: {t: SCORES[m][t][0] for t in TASKS} for m in SCORES}
    t_ci = stats.mean_rank_ci(stats.ranks_per_task(tuned))
    boot = stats.mean_rank_ci(stats.ranks_per_task(tuned), method="bootstrap", resamples=2000)
    strongest, plastic, baseline, teacher = s["answers"]
    assert strongest.startswith("Strongest after fine-tuning over 3 tasks: A (A: mean rank "
                                f"1.00 [1.00, 1.00] t-interval, bootstrap [{boot['A'][1]:.2f}, {boot['A'][2]:.2f}])")
    assert t_ci["A"] == (1.0, 1.0, 1.0)
    # Friedman on 3 models x 3 tasks with identical orderings: chi2 = 6, p = exp(-3)
    assert "Friedman chi2 = 6.00, p = 0.0498 over 3 tasks: the students' ranks differ at 0.05" in strongest
    assert s["friedman"]["nemenyi_cd"] == pytest.approx(1.913, abs=1e-3)  # Demsar: 2.343 * sqrt(12 / 18)
    assert "A is significantly ahead of C; not distinguishable from B." in strongest
    gains = {m: sum(SCORES[m][t][0] - SCORES[m][t][1] for t in TASKS) / 3 for m in SCORES}
    assert plastic.startswith("Most plastic (largest gain over its own best baseline): C (C: mean rank 1.00")
    assert f"mean gain +{100 * gains['C']:.1f} points" in plastic
    assert baseline.startswith("Best baseline (better of zero-/few-shot, before any fine-tuning): B (B: mean rank 1.00")
    assert "t1: 90.0 vs 80.0 (+10.0 points, mcnemar-exact p = 0.01, 100 items): yes, it beats the teacher" in teacher
    assert "t2: 70.0 vs 80.0 (-10.0 points, mcnemar-exact p = 0.5, 100 items): no significant difference" in teacher
    assert "t3: 60.0 vs 80.0 (-20.0 points, mcnemar-exact p = 0.001, 100 items): no, the teacher is significantly " \
           "better, 60% of the gap closed" in teacher  # (0.6 - 0.3) / (0.8 - 0.3)
    assert s["plasticity"]["C"]["t1"] == pytest.approx(0.6)


def test_ties_one_task_and_a_missing_cell_are_said_plainly():
    rs = [rec("A", "t1", 0.5, 0.4), rec("B", "t1", 0.5, 0.3), rec("C", "t1", 0, 0, done=False)]
    s = analyse(rs, ["t1"], ["A", "B", "C"], ["T1"], ["sft"])["slices"][0]
    assert s["left_out"] == ["C"] and s["students"] == ["A", "B"]
    assert "A and B (tied) (A: mean rank 1.50 [no interval from one task]" in s["answers"][0]
    assert "Friedman/Nemenyi: not enough tasks (they need at least 2 tasks and 2 students)." in s["answers"][0]


def test_teacher_pick_skips_failed_forgetting_gates_and_breaks_ties_on_capacity_nll():
    rs = []
    for t in TASKS:
        rs += [rec("A", t, 0.7, 0.4, teacher="T1", nll=2.5), rec("A", t, 0.9, 0.4, teacher="T2", drop=12.0, passed=False),
               rec("A", t, 0.7, 0.4, teacher="T3", nll=1.5, drop=1.0)]
    out = analyse(rs, TASKS, ["A"], ["T1", "T2", "T3"], ["sft"])
    choice = out["teacher_choice"][0]
    assert choice["pick"] == "T3"  # T2 scores highest but fails its forgetting gate; T1 ties T3 at a higher NLL
    assert choice["answer"].startswith("Teacher for A (sft): T3 (mean 70.0, worst forgetting drop +1.0 points, "
                                       "capacity NLL 1.50 nats/token on t1, t2, t3); vs T2 (mean 90.0, worst "
                                       "forgetting drop +12.0 points")  # the rivals, highest mean first
    assert "; T1 (mean 70.0, worst forgetting drop +0.0 points" in choice["answer"]


def test_capacity_nll_is_compared_only_on_tasks_every_teacher_has_data_for():
    """T2's data was all dropped on t2 and t3 (no NLL there): both teachers' NLLs come from t1 alone, where T2's
    data is the closer one, even though T1's mean over all three tasks would be lower."""
    nll = {("T1", "t1"): 5.0, ("T1", "t2"): 1.0, ("T1", "t3"): 1.0, ("T2", "t1"): 4.0}
    rs = []
    for (teacher, t) in [(te, t) for te in ("T1", "T2") for t in TASKS]:
        r = rec("A", t, 0.7, 0.4, teacher=teacher, nll=nll.get((teacher, t)))
        rs.append(r if (teacher, t) in nll else r | {"capacity": {"nll": None, "tokens": 0, "dir": None}})
    options = {o["teacher"]: o for o in analyse(rs, TASKS, ["A"], ["T1", "T2"], ["sft"])["teacher_choice"][0]["options"]}
    assert options["T1"]["nll"] == 5.0 and options["T2"]["nll"] == 4.0
    assert options["T1"]["nll_tasks"] == options["T2"]["nll_tasks"] == ["t1"]


def test_model_selection_scenarios():
    rs = []
    for t in TASKS:  # A: accurate but slow and big; B: fast; C: smallest
        rs += [rec("A", t, 0.9, 0.5, seconds=1.0, weights=500.0), rec("B", t, 0.6, 0.55, seconds=0.01, weights=200.0),
               rec("C", t, 0.5, 0.2, seconds=0.05, weights=50.0)]
    picks = analyse(rs, TASKS, ["A", "B", "C"], ["T1"], ["sft"])["selection"]["picks"]
    assert picks == {"highest metric": "A + LoRA (sft, teacher T1)",
                     "tight compute (metric per inference second)": "B + LoRA (sft, teacher T1)",
                     "cannot fine-tune (best student baseline)": "B (best baseline)",
                     "edge (smallest weights)": "C + LoRA (sft, teacher T1)"}


def test_a_candidate_not_measured_on_every_task_is_named_with_what_it_lacks_and_not_picked():
    rs = [rec("A", t, 0.6, 0.5) for t in TASKS] + [rec("B", t, 0.9, 0.5, teacher="T2") for t in TASKS[:2]]
    sel = analyse(rs, TASKS, ["A", "B"], ["T1", "T2"], ["sft"])["selection"]
    assert sel["partial"] == [{"name": name, "missing": ["t3"]} for name in
                              ("B + LoRA (sft, teacher T2)", "B (best baseline)", "T2 (teacher, prompted)")]
    assert sel["picks"]["highest metric"] == "T1 (teacher, prompted)"  # 0.8: B's 0.9 on two tasks is not compared


def test_a_bench_still_running_picks_a_teacher_over_the_tasks_every_teacher_finished():
    """T1 finished t1 and t2, T2 only t1 (its t2 cell has not run). Over what each finished T1 averages 0.75 and
    T2 0.6, but on t1, the only task both have, T2 is ahead: the pick is T2, said to be provisional."""
    rs = [rec("A", "t1", 0.5, 0.4, teacher="T1"), rec("A", "t2", 1.0, 0.4, teacher="T1"),
          rec("A", "t1", 0.6, 0.4, teacher="T2"), rec("A", "t2", 0, 0, teacher="T2", done=False)]
    choice = analyse(rs, ["t1", "t2"], ["A"], ["T1", "T2"], ["sft"])["teacher_choice"][0]
    assert choice["pick"] == "T2" and choice["provisional"] and choice["shared_tasks"] == ["t1"]
    assert choice["answer"].startswith("Teacher for A (sft): T2 (mean 60.0, worst forgetting drop +0.0 points")
    assert "vs T1 (mean 50.0," in choice["answer"]
    assert choice["answer"].endswith("Provisional: over t1, the 1 of 2 tasks every teacher has finished.")
    options = {o["teacher"]: o for o in choice["options"]}
    assert options["T1"]["metric"] == 0.75 and options["T1"]["per_task"]["t2"]["value"] == 1.0  # the table's view
    nothing = [rec("A", "t1", 0, 0, teacher="T1", done=False), rec("A", "t1", 0.6, 0.4, teacher="T2")]
    choice = analyse(nothing, ["t1"], ["A"], ["T1", "T2"], ["sft"])["teacher_choice"][0]
    assert choice["pick"] is None and "no task has been finished with every teacher yet" in choice["answer"]


def test_teachers_students_are_tested_head_to_head_on_the_same_items():
    """On t1, T2's student gets items 0-29 right, T1's items 20-39 and 40-49 wrong: b = 20 (only T2's), c = 10
    (only T1's), 50 items in common; exact McNemar p = P(X <= 10 | 30, 1/2) * 2."""
    items = lambda right: {str(i): float(i in right) for i in range(50)}  # noqa: E731
    t1 = rec("A", "t1", 0.4, 0.3, teacher="T1") | {"tuned_items": items(range(20, 40))}
    t2 = rec("A", "t1", 0.6, 0.3, teacher="T2") | {"tuned_items": items(range(0, 30))}
    no_items = rec("A", "t2", 0.5, 0.3, teacher="T1")  # a record collected before per-item scores were kept
    out = analyse([t1, t2, no_items, rec("A", "t2", 0.7, 0.3, teacher="T2")], ["t1", "t2"], ["A"], ["T1", "T2"],
                  ["sft"])
    (duel,) = out["head_to_head"]
    p = 2 * sum(math.comb(30, k) for k in range(11)) / 2**30
    assert (duel["task"], duel["best"], duel["other"]) == ("t1", "T2", "T1")
    assert (duel["test"]["b"], duel["test"]["c"], duel["test"]["n"]) == (20, 10, 50)
    assert duel["test"]["p_value"] == pytest.approx(p) and not duel["separable"]  # p = 0.099
    assert out["teacher_choice"][0]["answer"].endswith(
        f"Head to head, the best teacher's student against each other's on the same items: t1: T2 60.0 vs T1 40.0 "
        f"(mcnemar-exact p = {p:.3g}, 50 items, 20 vs 10 items: not separable).")
    clear = t2 | {"tuned_items": items(range(0, 40))}  # T1's right items are a subset: b = 20, c = 0
    (duel,) = analyse([t1, clear], ["t1"], ["A"], ["T1", "T2"], ["sft"])["head_to_head"]
    assert duel["separable"] and duel["test"]["p_value"] == pytest.approx(2 / 2**20)


def test_the_answers_summary_gives_the_pick_the_others_in_order_and_its_duels_with_a_direction():
    """T3 is picked (highest mean); its student is ahead of T1's on t1 (T1's right items are a subset of T3's) and
    behind T2's on t2 (the other way round); T1 and T2's own duel on t2 does not involve the pick and is left to
    the teacher section."""
    items = lambda right: {str(i): float(i in right) for i in range(50)}  # noqa: E731
    rs = [rec("A", "t1", 0.4, 0.3, teacher="T1") | {"tuned_items": items(range(0, 20))},
          rec("A", "t1", 0.2, 0.3, teacher="T2") | {"tuned_items": items(range(0, 10))},
          rec("A", "t1", 0.8, 0.3, teacher="T3") | {"tuned_items": items(range(0, 40))},
          rec("A", "t2", 0.3, 0.3, teacher="T1") | {"tuned_items": items(range(0, 15))},
          rec("A", "t2", 0.9, 0.3, teacher="T2") | {"tuned_items": items(range(0, 45))},
          rec("A", "t2", 0.5, 0.3, teacher="T3") | {"tuned_items": items(range(0, 25))}]
    summary = analyse(rs, ["t1", "t2"], ["A"], ["T1", "T2", "T3"], ["sft"])["teacher_choice"][0]["summary"]
    assert summary.startswith("Teacher for A (sft): T3, mean 65.0 over t1, t2, against T2 55.0 and T1 35.0. ")
    assert "Its student on the same test items: t1 vs T1 ahead (p = " in summary
    assert "t2 vs T3" not in summary and "t2 vs T2 behind (p = " in summary and "T1 not separable" not in summary
    assert "t1 vs T2 ahead" in summary and summary.count(" vs ") == 3


def test_the_answers_summary_of_a_bench_still_running_says_provisional_or_none():
    rs = [rec("A", "t1", 0.5, 0.4, teacher="T1"), rec("A", "t2", 1.0, 0.4, teacher="T1"),
          rec("A", "t1", 0.6, 0.4, teacher="T2"), rec("A", "t2", 0, 0, teacher="T2", done=False)]
    summary = analyse(rs, ["t1", "t2"], ["A"], ["T1", "T2"], ["sft"])["teacher_choice"][0]["summary"]
    assert summary == "Teacher for A (sft): T2, mean 60.0 over t1 (provisional: 1 of 2 tasks so far), against T1 50.0."
    nothing = [rec("A", "t1", 0, 0, teacher="T1", done=False), rec("A", "t1", 0.6, 0.4, teacher="T2")]
    summary = analyse(nothing, ["t1"], ["A"], ["T1", "T2"], ["sft"])["teacher_choice"][0]["summary"]
    assert summary == "Teacher for A (sft): none yet (no task finished with every teacher)."


def test_a_gap_closed_that_rounds_to_zero_is_written_without_a_minus_sign():
    """Tuned equal to base under a teacher below both: (0.5 - 0.5) / (0.0 - 0.5) is -0.0, which '%.0f' writes -0."""
    s = analyse([rec("A", "t1", 0.5, 0.5, teacher_score=0.0, p=1.0)], ["t1"], ["A"], ["T1"], ["sft"])["slices"][0]
    assert s["answers"][-1].endswith("no significant difference from the teacher, 0% of the gap closed.")


def test_the_suite_tasks_at_0_before_training_are_counted_over_the_cells_that_measured_them():
    from protege.benchmark.report import forgetting_floor

    suite = lambda measured, floor: {"max_drop": 0.0, "worst": None, "passed": True,  # noqa: E731
                                     "measured": measured, "floor": floor}
    rs = [rec("A", "t1", 0.5, 0.4) | {"forgetting": suite(["gsm8k", "mbpp"], ["gsm8k"])},
          rec("B", "t1", 0.5, 0.4) | {"forgetting": suite(["gsm8k", "mbpp"], ["gsm8k", "mbpp"])},
          rec("C", "t1", 0.5, 0.4) | {"forgetting": suite(["gsm8k"], [])},
          rec("D", "t1", 0, 0, done=False), rec("E", "t1", 0.5, 0.4)]  # E: a record from before these lists
    assert forgetting_floor(rs) == {"gsm8k": (2, 3), "mbpp": (1, 2)}
    assert forgetting_floor(rs[2:]) == {}

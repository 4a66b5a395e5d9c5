"""The teacher-size experiment's table: one row per finished arm, the paired test between the two teachers'
students, and whether the capacity diagnostic picked the winner. Built from written eval results, no model.
Run: `.venv/bin/python -m pytest -q tests/test_teacher_size_table.py` (about a second)."""
from protege.lab.experiments.teacher_size import capacity_verdict, table
from protege.tasks.spec import load_task
from written_results import finished_result

DATA = {"capacity-matched (0.5B)": {"answered": 10, "kept": 6, "tokens_out": 1200, "seconds": 30.0},
        "large (1.5B)": {"answered": 10, "kept": 8, "tokens_out": 900, "seconds": 70.0}}


def arm(tmp_path, spec, teacher: str, nll: float, right: list[bool]) -> dict:
    return finished_result(tmp_path / teacher.split()[0], spec, right, student="S", teacher=teacher, n=6,
                           capacity_nll=nll)


def test_verdict_names_the_diagnostics_pick_and_whether_the_winner_matches(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    small = arm(tmp_path, spec, "capacity-matched (0.5B)", 0.9, [True] * 30 + [False] * 10)
    large = arm(tmp_path, spec, "large (1.5B)", 1.2, [False] * 30 + [True] * 10)
    verdict = capacity_verdict([small, large])
    assert "picks the capacity-matched (0.5B) teacher (NLL 0.900 vs 1.200)" in verdict
    assert "capacity-matched (0.5B) teacher's student wins" in verdict and "diagnostic predicted" in verdict

    large["capacity_nll"] = 0.5  # now the diagnostic picks the loser
    verdict = capacity_verdict([small, large])
    assert "picks the large (1.5B) teacher" in verdict and "did not predict the winner" in verdict


def test_verdict_declines_when_the_students_are_not_separable(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    a = arm(tmp_path, spec, "capacity-matched (0.5B)", 0.9, [True, False] * 20)
    b = arm(tmp_path, spec, "large (1.5B)", 1.2, [True, True, False, False] * 10)  # 10 vs 10 discordant items
    verdict = capacity_verdict([a, b])
    assert "not separable" in verdict and "cannot confirm or refute" in verdict and "wins" not in verdict


def test_table_has_a_row_per_finished_arm_and_lists_pending_ones(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    a = arm(tmp_path, spec, "capacity-matched (0.5B)", 0.9, [True] * 30 + [False] * 10)
    b = arm(tmp_path, spec, "large (1.5B)", 1.2, [False] * 30 + [True] * 10)
    pending = {"student": "P", "teacher": "large (1.5B)", "pending": True}
    text = table(DATA, [a, b, pending], "python -m x")
    assert "| capacity-matched (0.5B) | 10 | 6 | 1,200 | 30.0 |" in text
    assert "Arms still running" in text and "P <- large (1.5B)" in text
    assert "| S | capacity-matched (0.5B) | 10.0 | 75.0 [65.0, 85.0] | 50.0 | 5.0 -> 4.0 | n/a | 0.900 | 12 |" in text
    assert "- S: p = " in text and "(30 vs 10 items only one got right)" in text and "diagnostic predicted" in text
    assert "Test-set reads logged by these 2 eval stages: 0" in text


def test_reading_the_arms_names_the_pruned_student_without_pruning_it(monkeypatch):
    """--report-only runs nothing: the pruned student's cache folder is named (its stage keys need the name), the
    model is not made."""
    import protege.models.prune as prune
    from protege.lab.experiments import teacher_size

    def made(*a, **k):
        raise AssertionError("pruned while only reading")

    monkeypatch.setattr(prune, "cached_prune", made)
    named = teacher_size.students(run=False)
    assert list(named.values())[1] == f"hf:{prune.pruned_dir(teacher_size.PRUNE_FROM, teacher_size.PRUNE_KEEP)}"

"""Reports name an eval row by how it was prompted, not by its stored key: a few-shot row shown no examples is the
zero-shot row again and is left out, a teacher shown none is "teacher (zero-shot)"; results.json keeps its names.

    pytest tests/test_row_names.py
"""
from protege.evaluate.rows import Row, shown_name, shown_names, shown_rows
from protege.report import render_markdown
from protege.tasks.spec import DataSource, Example, TaskSpec

QA = TaskSpec(name="rc", kind="qa", description="d", test=DataSource(path="unused.jsonl"),
              seeds=[Example(text="Where does the Nile flow?", context="The Nile flows north.", answers=["north"])])


def row(name, shots, em):
    return {"row": name, "model": "m", "adapter": None, "shots": shots, "exact_match": em,
            "exact_match_ci": [em, em], "f1": em, "f1_ci": [em, em], "seconds_p50": 1.0, "seconds_p95": 1.0,
            "tokens_in_mean": 10, "tokens_out_mean": 5}


def results(few_shots, teacher_shots):
    rows = [row(Row.ZERO_SHOT, 0, 0.1), row(Row.FEW_SHOT, few_shots, 0.2), row(Row.FINE_TUNED, 0, 0.3),
            row(Row.TEACHER, teacher_shots, 0.5)]
    comparisons = [{"model_a": Row.FINE_TUNED, "model_b": r["row"], "p_value": 0.5, "only_a_right": 1,
                    "only_b_right": 1, "method": "exact"} for r in rows if r["row"] != Row.FINE_TUNED]
    return {"rows": rows, "comparisons": comparisons, "test_items": 3, "scoring": "generate", "versions": {}}


def test_zero_shots_rename_the_teacher_and_drop_the_few_shot_row_from_reports_only():
    stored = results(few_shots=0, teacher_shots=0)
    assert shown_names(stored["rows"]) == {Row.ZERO_SHOT: "baseline (zero-shot)", Row.FEW_SHOT: None,
                                           Row.FINE_TUNED: "fine-tuned", Row.TEACHER: "teacher (zero-shot)"}
    assert [r["row"] for r in shown_rows(stored["rows"])] == ["baseline (zero-shot)", "fine-tuned",
                                                              "teacher (zero-shot)"]
    assert [r["row"] for r in stored["rows"]][3] == "teacher (few-shot)"  # the stored rows are not changed
    text = render_markdown(QA, stored, {})
    assert "few-shot" not in text
    assert "| teacher (zero-shot) | m |" in text
    assert text.count("McNemar") == 2 and "fine-tuned vs teacher (zero-shot): McNemar" in text


def test_rows_given_shots_keep_their_names():
    stored = results(few_shots=2, teacher_shots=2)
    assert [r["row"] for r in shown_rows(stored["rows"])] == [str(r["row"]) for r in stored["rows"]]
    text = render_markdown(QA, stored, {})
    assert "| baseline (few-shot) | m, 2 shots |" in text and "| teacher (few-shot) | m, 2 shots |" in text
    assert text.count("McNemar") == 3


def test_one_row_is_named_by_its_shots():
    assert shown_name(Row.TEACHER, 0) == "teacher (zero-shot)" and shown_name(Row.TEACHER, 3) == "teacher (few-shot)"
    assert shown_name(Row.FEW_SHOT, 0) is None and shown_name(Row.FEW_SHOT, 2) == "baseline (few-shot)"
    assert shown_name(Row.FINE_TUNED, 0) == "fine-tuned"

"""experiments/answer_style.py: the answer-level style measurement on both variants' answers to the same items."""
import json

import pytest

from protege.lab.experiments.answer_style import answer_row, bootstrap_difference, style_table


def test_answer_rows_take_the_raw_answer_whatever_its_number_and_code_needs_code():
    from protege.tasks.spec import TaskSpec

    math = TaskSpec.model_construct(name="m", kind="math", description="Solve.")
    item = {"id": "gen-1", "ok": True, "text": "2+2?", "answers": ["4"], "raw_item": "x"}
    assert answer_row(math, item, " 2+2 = 5\n#### 5 ") == {"id": "gen-1", "text": "2+2?", "answers": ["4"],
                                                            "reference": "2+2 = 5\n#### 5"}
    code = TaskSpec.model_construct(name="c", kind="code", description="Write code.")
    row = answer_row(code, {"id": "g", "text": "f", "tests": "assert f() == 1"},
                     "So:\n```python\ndef f():\n    return 1\n```")
    assert row["reference"] == "def f():\n    return 1" and row["rationale"] == "So:"
    assert answer_row(code, {"id": "g", "text": "f"}, "no code at all") is not None  # parse falls back to all
    assert answer_row(code, {"id": "g", "text": "f"}, "") is None


def test_bootstrap_difference_is_the_pooled_per_token_difference_with_an_interval():
    a = {"x": (2.0, 2), "y": (6.0, 2)}  # 2 nats a token overall
    b = {"x": (1.0, 2), "y": (3.0, 2)}  # 1 nat a token
    diff, (lo, hi) = bootstrap_difference(a, b, ["x", "y"], resamples=200)
    assert diff == pytest.approx(-1.0) and lo <= diff <= hi


def test_the_table_compares_both_variants_on_the_items_both_answered(tmp_path, tiny_model_dir):
    from protege.config import load_config
    from tiny import write_tiny_config

    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "test.jsonl").write_text(json.dumps({"q": "What is 9 + 1 ?", "a": "10"}) + "\n")
    (tmp_path / "task" / "task.yaml").write_text(
        "name: tinymath\nkind: math\ndescription: Solve the problem.\n"
        "seeds:\n  - {text: 'What is 1 + 1 ?', answers: ['2'], reference: '1 + 1 = 2\\n#### 2'}\n"
        "test: {path: test.jsonl, fields: {text: q, answers: a}}\n")
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tmp_path / "task" / "task.yaml"))
    from protege.pipeline import Pipeline

    spec = Pipeline(cfg, progress=False, echo=lambda m: None).spec
    items = {f"gen-{i}": {"id": f"gen-{i}", "ok": True, "text": f"What is {i} + 1 ?", "answers": [str(i + 1)]}
             for i in range(3)}
    alone = {i: {"id": i, "ok": i == "gen-0", "raw": "So 1 + 1 = 2\n#### 2"} for i in items}
    together = {i: {"id": i, "ok": False, "raw": "Well, so 1 + 1 = 2\n#### 2",
                    "chars": {"student": 9, "teacher": 16}} for i in list(items)[:2]}  # gen-2 not answered
    variants = [{"name": "teacher only", "cfg": cfg, "spec": spec, "items": items, "answers": alone, "dir": "a"},
                {"name": "cooperative", "cfg": cfg, "spec": spec, "items": items, "answers": together, "dir": "b"}]
    table = style_table(variants, "cmd")
    assert "Items answered by both variants: 2;" in table
    assert "| teacher only | 1 of 2 | 0.0% |" in table and "| cooperative | 0 of 2 | 36.0% |" in table
    assert "Cooperative minus teacher-only, student NLL per answer token:" in table

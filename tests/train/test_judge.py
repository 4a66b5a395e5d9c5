"""The judge scores raw answers per kind with the kinds' own parsers and scorers, reduced to the headline metric."""
import pytest

from protege.scoring.sandbox import CodeExecutionNotAllowed
from protege.tasks.spec import Example, Label, TaskSpec
from protege.train.judge import judge


def spec_of(kind, **kw):
    return TaskSpec(name="t", kind=kind, description="d", seeds=[], test={"path": "unused.jsonl"}, **kw)


def test_classification_scores_the_parsed_label():
    labels = [Label(name="LOC", verbalizer="location"), Label(name="NUM", verbalizer="number")]
    spec = spec_of("classification", labels=labels)
    item = Example(id="a", text="Where is Paris?", label="LOC")
    outputs = ["location", "It asks for a Location.", "number", "no idea"]
    assert judge(spec, [item] * 4, outputs) == [1.0, 1.0, 0.0, 0.0]


def test_math_scores_the_final_number():
    spec = spec_of("math")
    item = Example(id="m", text="What is 6 times 7?", answers=["42"])
    outputs = ["6 * 7 = 42\n#### 42", "It is 42.0.", "6 * 7 = 42\n#### 41", "I do not know"]
    assert judge(spec, [item] * 4, outputs) == [1.0, 1.0, 0.0, 0.0]


def test_qa_scores_f1_by_default_and_exact_match_when_the_spec_says_so():
    item = Example(id="q", text="Capital of France?", answers=["Paris"])
    outputs = ["The answer is Paris.", "Paris, France", "Lyon"]
    assert judge(spec_of("qa"), [item] * 3, outputs) == pytest.approx([1.0, 2 / 3, 0.0])
    assert judge(spec_of("qa", metric="exact_match"), [item] * 3, outputs) == [1.0, 0.0, 0.0]
    unanswerable = Example(id="u", text="Capital of Atlantis?", answers=[])
    assert judge(spec_of("qa"), [unanswerable] * 2, ["unanswerable", "Paris"]) == [1.0, 0.0]


def test_extraction_scores_slot_f1_of_the_item():
    spec = spec_of("extraction", slots=[Label(name="date"), Label(name="time")])
    item = Example(id="e", text="Book it for today at 5pm", spans=[("date", "today"), ("time", "5pm")])
    outputs = ['{"date": "today", "time": "5pm"}', '{"date": "today"}', "{}"]
    assert judge(spec, [item] * 3, outputs) == pytest.approx([1.0, 2 / 3, 0.0])
    nothing = Example(id="n", text="Hello", spans=[])
    assert judge(spec, [nothing] * 2, ["{}", '{"date": "today"}']) == [1.0, 0.0]


CODE = spec_of("code")
ADD = Example(id="c", text="Write add(a, b) returning the sum.", tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0")


def test_code_runs_the_items_tests_in_the_sandbox():
    outputs = ["```python\ndef add(a, b):\n    return a + b\n```", "```python\ndef add(a, b):\n    return a - b\n```",
               "```python\ndef add(a, b):\n    raise SystemError('no')\n```"]
    assert judge(CODE, [ADD] * 3, outputs, allow_code_execution=True) == [1.0, 0.0, 0.0]


def test_code_is_refused_without_the_opt_in(tmp_path):
    marker = tmp_path / "ran"
    answer = f"```python\nopen({str(marker)!r}, 'w').close()\ndef add(a, b):\n    return a + b\n```"
    with pytest.raises(CodeExecutionNotAllowed):
        judge(CODE, [ADD], [answer])
    assert not marker.exists()


def test_one_output_per_item():
    with pytest.raises(ValueError, match="2 items but 1 outputs"):
        judge(spec_of("math"), [Example(text="x", answers=["1"])] * 2, ["1"])

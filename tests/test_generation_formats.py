"""Whole-item generation for every kind: the teacher's section format round-trips, mangled replies are
recorded with a reason instead of crashing, and the request plan is deterministic and diverse."""
import pytest

from markers import requires_data
from protege.config import GenerateConfig
from protege.synth.generate import make_record
from protege.synth.plan import planned_requests
from protege.tasks.kinds import kind_of


def show(spec, ex):
    return kind_of(spec).show(spec, ex)


def read_item(spec, raw):
    return kind_of(spec).read_generated(spec, raw)


def item_prompt(spec, shown, topic=None, persona=None):
    return kind_of(spec).generation_prompt(spec, None, shown, topic, persona)
from protege.models.base import Generation
from protege.tasks.spec import Example, TaskSpec, load_task


def spec_of(kind: str, **extra) -> TaskSpec:
    seeds = [{"text": "x", "answers": ["1"]}] if kind in ("qa", "math") else [{"text": "x"}]
    return TaskSpec(name=f"t-{kind}", kind=kind, description="Do the task.", seeds=seeds,
                    test={"path": "unused.jsonl"}, **extra)


@requires_data
@pytest.mark.parametrize("task", ["squad2", "nq_open", "gsm8k", "restaurant8k", "mbpp", "humaneval"])
def test_every_seed_shown_to_the_teacher_reads_back_as_the_same_item(task):
    spec = load_task(task)
    for seed in spec.seed_examples():
        fields, error = read_item(spec, show(spec, seed))
        if spec.kind == "qa" and seed.answers and seed.context and seed.answers[0].lower() not in seed.context.lower():
            continue  # SQuAD has a few gold answers not copied verbatim; the reader rightly refuses them
        assert error is None, (task, seed.id, error)
        assert fields["text"].split("\nYour code should")[0].strip() in seed.text or spec.kind == "code"
        if spec.kind == "qa":
            assert fields["answers"] == seed.answers[:1] and fields["context"] == seed.context
        if spec.kind == "math":
            assert fields["answers"] == seed.answers
        if spec.kind == "extraction":
            assert [tuple(s) for s in fields["spans"]] == [tuple(s) for s in seed.spans]
        if spec.kind == "code":
            assert "def " in fields["reference"] and "assert" in fields["tests"]


def test_a_qa_reply_in_markdown_bold_with_a_second_example_keeps_only_the_first():
    spec = spec_of("qa")
    raw = ("**Passage:** The Nile flows north through Egypt.\n**Question:** Which way does the Nile flow?\n"
           "**Answer:** north\n\nPassage: Another one.\nQuestion: Q2?\nAnswer: A2")
    fields, error = read_item(spec, raw)
    assert error is None
    assert fields == {"text": "Which way does the Nile flow?", "context": "The Nile flows north through Egypt.",
                      "answers": ["north"]}


@pytest.mark.parametrize("kind,raw,reason", [
    ("qa", "Passage: Cats sleep a lot.\nQuestion: Do cats fly?\nAnswer: yes they do", "not copied from the passage"),
    ("qa", "Question: What?", "no 'Answer:' section"),
    ("math", "Problem: 2+2?\nSolution: add\nFinal answer: four", "not a number"),
    ("extraction", "Message: table for two\nSlots: people=2", "not a JSON object"),
    ("code", "Problem: add\nSolution:\n```python\ndef add(a, b) return a+b\n```\nTests:\nassert add(1, 2) == 3",
     "does not parse"),
    ("code", "Problem: add\nSolution:\n```python\ndef add(a, b):\n    return a + b\n```\nTests:\nprint(1)",
     "no assert lines"),
    ("code", "Problem: add\nSolution:\n```python\ndef add(a, b):\n    return a + b\n```\nTests:\nassert sub(1) == 0",
     "call no function"),
])
def test_mangled_replies_come_back_with_the_reason(kind, raw, reason):
    extra = {"slots": [{"name": "people"}]} if kind == "extraction" else {}
    fields, error = read_item(spec_of(kind, **extra), raw)
    assert fields is None and reason in error


def test_a_generated_code_item_is_mbpp_style_with_its_asserts_in_the_text():
    raw = ("Problem: Write a function to add two numbers.\nSolution:\n```python\ndef add(a, b):\n    return a + b\n"
           "```\nTests:\n```python\nassert add(1, 2) == 3\nassert add(0, 0) == 0\n```")
    fields, error = read_item(spec_of("code"), raw)
    assert error is None and "entry_point" not in fields  # asserts, not check(candidate)
    assert fields["text"].endswith("Your code should pass these tests:\nassert add(1, 2) == 3\nassert add(0, 0) == 0")
    assert fields["reference"].startswith("def add(a, b):")


def test_a_malformed_reply_is_recorded_with_its_raw_text_not_raised():
    spec = spec_of("math")
    request = {"id": "gen-0", "seed_ids": ["s"], "conditioning": {"label": None, "topic": None, "persona": None}}
    record = make_record(spec, request, Generation(text="I cannot do that", tokens_in=5, tokens_out=4), "t")
    assert record["ok"] is False and record["raw"] == "I cannot do that" and "Problem" in record["error"]


def test_the_plan_is_deterministic_unique_and_rotates_topics_personas_and_seeds():
    spec = TaskSpec(name="t", kind="qa", description="Answer.", test={"path": "unused.jsonl"},
                    seeds=[{"text": f"q{i}", "answers": [str(i)], "id": f"s{i}"} for i in range(8)])
    cfg = GenerateConfig(num_examples=12, seeds_per_prompt=2, topics=["sport", "music", "law"],
                         personas=["a child", "a lawyer"])
    plan = planned_requests(spec, cfg)
    assert plan == planned_requests(spec, cfg)
    assert [r["id"] for r in plan] == [f"gen-{i}" for i in range(12)]
    assert [r["conditioning"]["topic"] for r in plan[:4]] == ["sport", "music", "law", "sport"]
    assert {r["conditioning"]["persona"] for r in plan} == {"a child", "a lawyer"}
    assert len({tuple(r["seed_ids"]) for r in plan}) > 3  # seeds shown rotate between requests
    assert "about music" in plan[1]["prompt"][-1]["content"]
    other_seed = planned_requests(spec, cfg.model_copy(update={"seed": 1}))
    assert [r["seed_ids"] for r in other_seed] != [r["seed_ids"] for r in plan]


def test_item_prompt_shows_seeds_in_the_format_it_asks_for():
    spec = spec_of("qa")
    shown = [Example(text="Who wrote Hamlet?", context="Hamlet is a play by Shakespeare.", answers=["Shakespeare"])]
    messages = item_prompt(spec, shown, topic="theatre")
    assert "(Passage:, Question:, Answer:)" in messages[0]["content"]
    # The seed is an earlier assistant turn, so a small model continues the pattern rather than chatting.
    assert messages[1] == {"role": "assistant", "content": "Passage: Hamlet is a play by Shakespeare.\n"
                           "Question: Who wrote Hamlet?\nAnswer: Shakespeare"}
    assert messages[-1]["role"] == "user" and "about theatre" in messages[-1]["content"]

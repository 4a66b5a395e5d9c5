"""Per-kind parsing and scoring, and generate-then-parse evaluation through a scripted model."""
import json

from typer.testing import CliRunner

from protege.cli import app
from protege.evaluate.classify import evaluate_classification
from protege.evaluate.generative import evaluate_generative
from protege.evaluate.summary import summarize
from protege.models.base import Generation
from protege.store import JsonlLog
from protege.tasks.kinds import classification, code, extraction, math_word, qa
from protege.tasks.spec import Example, Label, TaskSpec, load_task
from tiny import write_tiny_qa_task


def spec_of(kind, **kw):
    return TaskSpec(name="t", kind=kind, description="d", seeds=[], test={"path": "x"}, **kw)


class Scripted:
    """A model that answers from a script keyed by a word of the prompt: parsing is under test, not a model."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = answers

    def render(self, prompt):
        return prompt if isinstance(prompt, str) else prompt[-1]["content"]

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, prompts, config):
        out = []
        for p in prompts:
            text = self.render(p)
            reply = next(a for key, a in self.answers.items() if key in text)
            out.append(Generation(text=reply, tokens_in=len(text.split()), tokens_out=len(reply.split())))
        return out


def test_classification_generate_then_parse(tmp_path):
    spec = spec_of("classification", labels=[Label(name="LOC", verbalizer="location"), Label(name="NUM", verbalizer="number")])
    assert classification.parse(spec, "It asks for a Location, not a number.") == "LOC"
    assert classification.parse(spec, "no idea") is None
    items = [Example(id="test-0", text="Where is Paris?", label="LOC"), Example(id="test-1", text="How many?", label="NUM"),
             Example(id="test-2", text="Who?", label="NUM")]
    lm = Scripted({"Paris": "location", "many": "The answer: number", "Who": "a person"})
    records = evaluate_classification(lm, spec, items, [], JsonlLog(tmp_path / "s.jsonl"), scoring="generate",
                                      progress=False)
    assert [r["prediction"] for r in records] == ["LOC", "NUM", None]  # unparseable counts as wrong
    assert summarize(spec, records, 20)["accuracy"] == 2 / 3


def test_qa_parse_and_official_scoring():
    spec = spec_of("qa")
    assert qa.parse(spec, "The answer is Paris.\nMore text") == "Paris"
    assert qa.parse(spec, "Unanswerable.") == "" and qa.parse(spec, "not stated in the passage") == ""
    none, eiffel = Example(text="q", answers=[]), Example(text="q", answers=["the Eiffel Tower"])
    scores = qa.score_items(spec, [none, eiffel], ["", "Eiffel tower"], False)
    assert scores[0]["exact_match"] == 1.0  # no answer, none given
    assert scores[1]["exact_match"] == 1.0
    assert qa.target(spec, Example(text="q", answers=[])) == "unanswerable"


def test_math_parse_and_target():
    spec = spec_of("math")
    assert math_word.parse(spec, "so 3 + 4 = 7\n#### 1,234") == "1234"
    assert math_word.parse(spec, "no number here") is None
    item = Example(text="q", answers=["18"], reference="16 - 3 - 4 = <<16-3-4=9>>9\n9 * 2 = 18\n#### 18")
    assert "<<" not in math_word.target(spec, item)
    assert math_word.score_items(spec, [item], ["18.0"], False)[0]["number_match"] == 1.0


def test_extraction_parse_json_or_lines_and_drop_unknown_slots():
    spec = spec_of("extraction", slots=[Label(name="time"), Label(name="people")])
    assert extraction.parse(spec, 'Sure: {"time": "7pm", "colour": "red", "people": 4}') == [["time", "7pm"], ["people", "4"]]
    assert extraction.parse(spec, "time: 7pm\npeople: two") == [["time", "7pm"], ["people", "two"]]
    assert extraction.parse(spec, "{}") == []
    item = Example(text="x", spans=[("time", "7pm")])
    scores = extraction.score_items(spec, [item], [[["time", "7 PM"], ["people", "2"]]], False)[0]
    assert (scores["tp"], scores["fp"], scores["fn"]) == (0, 2, 1)


def test_code_program_completes_bodies_and_keeps_prompt_imports():
    spec = spec_of("code")
    item = Example(text="from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\"Sum.\"\"\"\n",
                   entry_point="f", tests="def check(candidate):\n    assert candidate([1, 2]) == 3\n")
    body = code.parse(spec, "Here:\n```python\n    return sum(xs)\n```\nDone")
    assert body == "    return sum(xs)"
    assert code.program(spec, item, body).startswith(item.text + "    return sum(xs)")
    whole = code.program(spec, item, "def f(xs: List[int]) -> int:\n    return sum(xs)")
    assert whole.startswith("from typing import List\ndef f(") and whole.rstrip().endswith("check(f)")


def test_code_stops_decoding_once_its_answer_can_no_longer_change():
    """Evaluation stops a code answer at the first prefix that matches STOP_PATTERN: from there on, parse and
    rationale read the same as on the whole output, whatever follows."""
    import re

    spec = spec_of("code")
    outputs = ["Sure.\n```python\ndef f(x):\n    return x\n```\nIt returns x. Or:\n```python\ndef f(x): pass\n```",
               "```py\nprint(1)\n```\n```\nprint(2)\n```", "```python \nimport os\n\n\nos.sep\n```trailing",
               "no block at all, just words", "```python\nnever closed"]
    for whole in outputs:
        stops = [n for n in range(len(whole) + 1) if re.search(code.STOP_PATTERN, whole[:n])]
        if not stops:  # never matches: decoding runs to the end of turn or the cap, as before
            assert "```" not in whole or whole.count("```") == 1
            continue
        first = whole[: stops[0]]
        assert first.endswith("```") and code.parse(spec, first) == code.parse(spec, whole) != ""
        assert code.rationale(first) == code.rationale(whole)
    assert all(getattr(kind, "STOP_PATTERN") is None for kind in (classification, extraction, math_word, qa))


def test_generative_evaluation_records_and_resume(tmp_path):
    spec = load_task(str(write_tiny_qa_task(tmp_path / "qa")))
    items = spec.test_examples()
    lm = Scripted({f"after {i} ": f"The answer is {i + 1}." if i % 2 == 0 else "unanswerable" for i in range(6)})
    log = JsonlLog(tmp_path / "s.jsonl")
    log.append([{"id": "test-0", "prediction": "kept from before", "exact_match": 0.0, "f1": 0.0,
                 "has_answer": True}])  # resumed: an item already scored is not asked again
    records = evaluate_generative(lm, spec, items, [], log, progress=False)
    assert [r["prediction"] for r in records] == ["kept from before", "", "3", "", "5", ""]
    assert [r["exact_match"] for r in records] == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert all(len(r["prompt_hash"]) == 16 and r["gold"] for r in records[1:])


def test_cli_eval_model_on_a_task(tmp_path, tiny_model_dir):
    task = write_tiny_qa_task(tmp_path / "qa")
    args = ["eval", "--model", f"hf:{tiny_model_dir}", "--task", str(task), "--shots", "1",
            "--runs-dir", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = next((tmp_path / "runs" / "tinyqa").glob("model-eval-*"))
    results = json.loads((out / "results.json").read_text())
    assert results["shots"] == 1 and results["shot_ids"] == ["seed-0"] and results["test_items"] == 6
    assert 0 <= results["summary"]["f1_ci"][0] <= results["summary"]["f1"] <= results["summary"]["f1_ci"][1]
    assert results["git"] and results["versions"]["torch"] and results["date"]
    assert len((out / "samples.jsonl").read_text().splitlines()) == 6
    assert len((out / "test-access.jsonl").read_text().splitlines()) == 1
    again = CliRunner().invoke(app, args)
    assert "reused" in again.output


def test_cli_eval_refuses_code_without_opt_in(tmp_path, tiny_model_dir):
    result = CliRunner().invoke(app, ["eval", "--model", f"hf:{tiny_model_dir}", "--task", "humaneval"])
    assert result.exit_code == 2 and "--allow-code-execution" in result.output


def test_an_empty_test_slice_is_refused_instead_of_scored_zero(tiny_task, tmp_path):
    result = CliRunner().invoke(app, ["eval", "--model", "hf:/unused", "--task", str(tiny_task), "--limit", "0",
                                      "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "0 test items would give no score" in result.output

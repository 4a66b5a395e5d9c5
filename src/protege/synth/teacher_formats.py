"""How the teacher writes whole new items for the generative kinds, and how its reply becomes an Example.

    messages = item_prompt(spec, shown_seeds, topic="sport", persona="a nurse")
    fields, error = read_item(spec, teacher_reply)    # Example fields, or None and why not

The teacher sees each seed in a labelled-section format (Passage/Question/Answer, Problem/Solution/Final
answer, Message/Slots, Problem/Solution/Tests) and answers in the same format; anything it mangles comes back
as (None, reason) so the generate stage can record it with the raw text instead of crashing.
(Classification asks for one labelled line instead: protege.tasks.prompts.)
"""
from __future__ import annotations

import ast
import json
import re
from typing import Sequence

from protege.tasks.kinds import code, math_word
from protege.tasks.kinds.qa import UNANSWERABLE
from protege.tasks.spec import Example, TaskSpec



def _headers(spec: TaskSpec) -> list[str]:
    return {"qa": ["Passage", "Question", "Answer"], "math": ["Problem", "Solution", "Final answer"],
            "extraction": ["Asked", "Message", "Slots"], "code": ["Problem", "Solution", "Tests"]}[spec.kind]


def show(spec: TaskSpec, ex: Example) -> str:
    """One seed in the section format the teacher is asked to answer in."""
    if spec.kind == "qa":
        passage = f"Passage: {ex.context}\n" if ex.context else ""
        return f"{passage}Question: {ex.text}\nAnswer: {ex.answers[0] if ex.answers else UNANSWERABLE}"
    if spec.kind == "math":
        worked = math_word.target(spec, ex).split("####")[0].strip()  # calculator annotations removed
        return f"Problem: {ex.text}\nSolution: {worked}\nFinal answer: {ex.answers[0]}"
    if spec.kind == "extraction":
        asked = f"Asked: {ex.context}\n" if ex.context else ""
        return f"{asked}Message: {ex.text}\nSlots: {json.dumps(dict(ex.spans or []))}"
    if spec.kind == "code":
        problem = ex.text.split("Your code should pass these tests:")[0].strip()
        return (f"Problem: {problem}\nSolution:\n```python\n{(ex.reference or '').strip()}\n```\n"
                f"Tests:\n```python\n{_as_asserts(ex).strip()}\n```")
    raise ValueError(f"task {spec.name}: kind {spec.kind!r} has no item format")


def _as_asserts(ex: Example) -> str:
    """HumanEval seeds test through check(candidate); shown to the teacher as plain asserts on the function."""
    tests = ex.tests or ""
    if ex.entry_point and "def check(candidate)" in tests:
        body = [line.strip() for line in tests.splitlines() if line.strip().startswith("assert")]
        return "\n".join(line.replace("candidate(", f"{ex.entry_point}(") for line in body)
    return tests


def _what(spec: TaskSpec, with_context: bool) -> str:
    if spec.kind == "qa":
        if with_context:
            return ("a passage, a question about it, and the answer copied word for word from the passage "
                    f"(or \"{UNANSWERABLE}\" when the passage does not say)")
        return "a factual question and its short answer"
    if spec.kind == "math":
        return "a word problem, a step-by-step solution, and the final number"
    if spec.kind == "extraction":
        slots = ", ".join(spec.slot_names)
        return f"a message and a JSON object of the slots it mentions (slots: {slots}), values copied from it"
    return ("a programming problem, a short Python solution in a ```python block, and three assert tests "
            "that call the solution's function, in a ```python block")


def item_prompt(spec: TaskSpec, shown: Sequence[Example], topic: str | None = None,
                persona: str | None = None) -> list[dict]:
    """Ask the teacher for one new item in the section format.

    The seeds are earlier assistant turns answering the same request, so even a small instruct model
    continues the pattern instead of chatting about it; the last request carries the topic and persona.
    """
    with_context = any(e.context for e in shown) and spec.kind == "qa"
    headers = [h for h in _headers(spec) if h != "Passage" or with_context]
    headers = [h for h in headers if h != "Asked" or any(e.context for e in shown)]
    ask = (f"Task: {spec.description}\nWrite one new example: {_what(spec, with_context)}. "
           f"Use exactly this format ({', '.join(h + ':' for h in headers)}) and nothing else.")
    again = "Write another new example, different from the ones before, in the same format."
    messages: list[dict] = []
    for i, example in enumerate(shown):
        messages += [{"role": "user", "content": ask if i == 0 else again},
                     {"role": "assistant", "content": show(spec, example)}]
    steer = (f" It should be about {topic}." if topic else "") + (f" Write it as {persona} would." if persona else "")
    messages.append({"role": "user", "content": (again if shown else ask) + steer})
    return messages


def sections(raw: str, names: Sequence[str]) -> dict[str, str]:
    """`Name: value` sections (values may span lines) keyed by lower-case name; markdown bold tolerated."""
    pattern = re.compile(r"^[ \t]*\**(%s)\**[ \t]*:\**[ \t]*" % "|".join(re.escape(n) for n in names), re.I | re.M)
    marks = list(pattern.finditer(raw))
    found: dict[str, str] = {}
    for mark, nxt in zip(marks, marks[1:] + [None]):
        name = mark.group(1).lower()
        if name not in found:  # a teacher that runs on into a second example keeps only its first
            found[name] = raw[mark.end() : nxt.start() if nxt else len(raw)].strip()
    return found


def read_item(spec: TaskSpec, raw: str) -> tuple[dict | None, str | None]:
    """Example fields parsed from the teacher's reply, or (None, what is missing or wrong)."""
    got = sections(raw, _headers(spec))
    try:
        if spec.kind == "qa":
            return _read_qa(got)
        if spec.kind == "math":
            return _read_math(spec, got)
        if spec.kind == "extraction":
            return _read_extraction(spec, got)
        return _read_code(spec, got)
    except _Missing as e:
        return None, str(e)


class _Missing(ValueError):
    pass


def _need(got: dict, name: str) -> str:
    value = got.get(name.lower(), "").strip()
    if not value:
        raise _Missing(f"no '{name}:' section")
    return value


def _read_qa(got: dict) -> tuple[dict, None]:
    question = _need(got, "Question").splitlines()[0].strip()
    answer = _need(got, "Answer").splitlines()[0].strip().rstrip(".").strip()
    passage = got.get("passage", "").strip() or None
    answers = [] if answer.lower().startswith(UNANSWERABLE) else [answer]
    if passage and answers and answer.lower() not in passage.lower():
        raise _Missing("the answer is not copied from the passage")
    if not passage and not answers:
        raise _Missing("a closed-book question must have an answer")
    return {"text": question, "context": passage, "answers": answers}, None


def _read_math(spec: TaskSpec, got: dict) -> tuple[dict, None]:
    problem, solution = _need(got, "Problem"), _need(got, "Solution")
    number = math_word.parse(spec, _need(got, "Final answer"))  # the number as evaluation reads it
    if number is None:
        raise _Missing("the final answer is not a number")
    return {"text": problem, "answers": [number], "reference": f"{solution}\n#### {number}"}, None


def _read_extraction(spec: TaskSpec, got: dict) -> tuple[dict, None]:
    message = _need(got, "Message").splitlines()[0].strip()
    slots_text = _need(got, "Slots")
    match = re.search(r"\{.*?\}", slots_text, re.S)
    try:
        obj = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise _Missing("'Slots:' is not a JSON object")
    spans = [(str(k), str(v)) for k, v in obj.items() if str(v).strip()]
    asked = got.get("asked", "").splitlines()[0].strip() if got.get("asked") else None
    return {"text": message, "context": asked or None, "spans": spans}, None


def _read_code(spec: TaskSpec, got: dict) -> tuple[dict, None]:
    problem = _need(got, "Problem")
    # The first ```python block, as evaluation reads a model's code.
    solution, tests = code.parse(spec, _need(got, "Solution")), code.parse(spec, _need(got, "Tests"))
    asserts = [line for line in tests.splitlines() if line.strip().startswith("assert")]
    if not asserts:
        raise _Missing("'Tests:' has no assert lines")
    try:
        tree = ast.parse(solution)
    except SyntaxError as e:
        raise _Missing(f"the solution does not parse: {e.msg}") from None
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    called = [n for n in names if any(f"{n}(" in a for a in asserts)]
    if not called:
        raise _Missing("the tests call no function the solution defines")
    tests_text = "\n".join(asserts)
    # MBPP style: the tests are plain asserts, so there is no entry point to pass to check(candidate).
    return {"text": f"{problem}\nYour code should pass these tests:\n{tests_text}", "reference": solution,
            "tests": tests_text}, None


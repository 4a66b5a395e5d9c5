"""Python code generation: the assistant writes a function in a ```python block; it runs against the tests.

HumanEval-style items (an `entry_point` and a signature+docstring prompt) are completed: when the answer does
not define the entry point itself, it is appended to the prompt. MBPP-style items show their asserts. Scoring
runs every program in the sandbox (protege.scoring.sandbox), which refuses without allow_code_execution.
"""
from __future__ import annotations

import ast
import re
from collections import Counter
from typing import Optional, Sequence

from protege.scoring.summaries import mean_metric
from protege.tasks.kinds.chat import (as_is, chat_with_shots, closed_book, first_seeds, mean_metric_fn,
                                       one_group, own_value)
from protege.tasks.kinds.sections import Missing, item_request, need, read_sections
from protege.tasks.spec import Example, TaskSpec

NAME = "code"
METRICS = ("pass@1",)
COLUMNS = [("pass@1", "pass@1")]
SECONDARY_METRICS: tuple[str, ...] = ()
REQUIRED_FIELDS = ("text", "tests")
LABELLED = False
EXECUTES_CODE = True
REWRITES_ANSWERS = True
MAX_NEW_TOKENS = 384
STOP: list[str] = []
_FENCE = r"```(?:python|py|Python)?[ \t]*\n"  # a code block's opening line
# parse() reads the first ```python block: once it is closed, nothing after it changes the answer
STOP_PATTERN = r"(?s)" + _FENCE + r".*?```"
FEW_SHOTS = 2
GENERATION_MAX_NEW_TOKENS = 384
MAX_TEXT_CHARS = 1000  # an MBPP statement is ~80 characters
COMPARED_FIELDS = ("text",)
HEADERS = ["Problem", "Solution", "Tests"]
_BLOCK = re.compile(_FENCE + r"(.*?)(?:```|\Z)", re.S)


def check_spec(spec: TaskSpec) -> list[str]:
    return []


read_row = as_is
few_shot_examples = first_seeds
generation_groups = one_group
is_open_book = closed_book
item_score = own_value
metric_fn = mean_metric_fn


def render_input(item: Example) -> str:
    if item.entry_point:
        return f"```python\n{item.text.rstrip()}\n```"
    return item.text


def prompt(spec: TaskSpec, item: Example, shots=()) -> list[dict]:
    return chat_with_shots(spec, spec.description + " Reply with the code in one ```python block.", render_input,
                           shots, item)


def target(spec: TaskSpec, item: Example) -> str:
    """The solution in a ```python block, after the item's rationale when it has one (the student learns to
    reason first; `parse` reads only the block)."""
    block = f"```python\n{(item.reference or '').strip()}\n```"
    return f"{item.rationale.strip()}\n\n{block}" if item.rationale and item.rationale.strip() else block


def rationale(output: str) -> str:
    """What an answer wrote before its first ```python block ("" when it has no block or opens with one)."""
    match = _BLOCK.search(output)
    return output[: match.start()].strip() if match else ""


def parse(spec: TaskSpec, output: str) -> str:
    """The code in the first ```python block (or the whole output when there is none)."""
    match = _BLOCK.search(output)
    return (match.group(1) if match else output).strip("\n")


def read_prediction(spec: TaskSpec, value):
    return parse(spec, str(value))  # the program text; a ```python block is fine


def program(spec: TaskSpec, item: Example, prediction: str) -> str:
    from protege.scoring.sandbox import check_program

    solution = prediction
    if item.entry_point:
        if re.search(rf"^\s*def\s+{re.escape(item.entry_point)}\s*\(", prediction, re.M):
            # A whole function: keep the prompt's imports (HumanEval signatures use typing.List etc.).
            imports = [l for l in item.text.splitlines() if re.match(r"(from\s+\S+\s+)?import\s", l)]
            solution = "\n".join(imports + [prediction])
        else:
            solution = item.text + prediction  # a body completing the prompt's signature
    return check_program(solution, item.tests or "", item.entry_point if item.entry_point else None)


def score_items(spec: TaskSpec, items: Sequence[Example], predictions: list, allow_code_execution: bool) -> list[dict]:
    """Each program run against its item's tests in the sandbox (in parallel); refused without the opt-in."""
    from protege.scoring.sandbox import run_many

    results = run_many([program(spec, it, p) for it, p in zip(items, predictions)],
                       allow_code_execution=allow_code_execution, packages=spec.packages)
    return [{"pass@1": float(r.passed), "status": r.status, "reason": r.reason, "run_s": round(r.wall_s, 3),
             **({"missing_module": r.missing_module} if r.missing_module else {})} for r in results]




def item_correct(record: dict) -> bool:
    return bool(record["pass@1"])


def summarize(spec: TaskSpec, records: list[dict], resamples: int) -> dict:
    statuses = {s: sum(1 for r in records if r["status"] == s) for s in sorted({r["status"] for r in records})}
    summary = {"n": len(records), **mean_metric(spec.headline_metric, records, resamples), "statuses": statuses}
    reasons = Counter(r["reason"] for r in records if r.get("reason") not in (None, "passed"))
    if reasons:
        summary["reasons"] = dict(sorted(reasons.items()))
    hidden = hidden_packages(records, spec.packages)
    if hidden:
        summary["warning"] = hidden
    return summary


def hidden_packages(records: list[dict], exposed: Sequence[str]) -> str | None:
    """A warning when failures are import errors of packages this environment has but the sandbox hid."""
    import importlib.util

    missing = Counter(r["missing_module"] for r in records if r.get("missing_module"))
    here = {name: n for name, n in missing.items() if name not in exposed and importlib.util.find_spec(name)}
    if not here:
        return None
    listed = ", ".join(f"{name} ({n})" for name, n in sorted(here.items(), key=lambda kv: -kv[1]))
    names = ", ".join(sorted(here))
    return (f"{sum(here.values())} failures are imports of packages installed here but hidden from the sandbox: "
            f"{listed}; if the task allows them, add packages: [{names}] to the task spec (or --package on "
            "protege score/eval)")




# --- synthetic data ------------------------------------------------------------------------------------------



def _as_asserts(ex: Example) -> str:
    """HumanEval seeds test through check(candidate); shown to the teacher as plain asserts on the function."""
    tests = ex.tests or ""
    if ex.entry_point and "def check(candidate)" in tests:
        body = [line.strip() for line in tests.splitlines() if line.strip().startswith("assert")]
        return "\n".join(line.replace("candidate(", f"{ex.entry_point}(") for line in body)
    return tests


def show(spec: TaskSpec, ex: Example) -> str:
    """One seed in the section format the teacher answers in."""
    problem = ex.text.split("Your code should pass these tests:")[0].strip()
    return (f"Problem: {problem}\nSolution:\n```python\n{(ex.reference or '').strip()}\n```\n"
            f"Tests:\n```python\n{_as_asserts(ex).strip()}\n```")


def generation_prompt(spec: TaskSpec, group: Optional[str], shown: Sequence[Example], topic: str | None = None,
                      persona: str | None = None) -> list[dict]:
    what = ("a programming problem, a short Python solution in a ```python block, and three assert tests "
            "that call the solution's function, in a ```python block")
    return item_request(spec, HEADERS, what, lambda ex: show(spec, ex), shown, topic, persona)


def generation_max_new_tokens(spec: TaskSpec) -> int:
    return GENERATION_MAX_NEW_TOKENS


def read_generated(spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
    def read(got: dict) -> dict:
        problem = need(got, "Problem")
        # The first ```python block, as evaluation reads a model's code.
        solution, tests = parse(spec, need(got, "Solution")), parse(spec, need(got, "Tests"))
        asserts = [line for line in tests.splitlines() if line.strip().startswith("assert")]
        if not asserts:
            raise Missing("'Tests:' has no assert lines")
        try:
            tree = ast.parse(solution)
        except SyntaxError as e:
            raise Missing(f"the solution does not parse: {e.msg}") from None
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        if not [n for n in names if any(f"{n}(" in a for a in asserts)]:
            raise Missing("the tests call no function the solution defines")
        tests_text = "\n".join(asserts)
        # MBPP style: the tests are plain asserts, so there is no entry point to pass to check(candidate).
        return {"text": f"{problem}\nYour code should pass these tests:\n{tests_text}", "reference": solution,
                "tests": tests_text}

    return read_sections(raw, HEADERS, read)




def entry_point_of(rec: dict) -> Optional[str]:
    """The record's entry_point, else the first top-level function of the solution that the tests call."""
    if rec.get("entry_point"):
        return rec["entry_point"]
    try:
        tree = ast.parse(rec.get("reference") or "")
    except (SyntaxError, ValueError):
        return None
    tests = rec.get("tests") or ""
    called = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
              and re.search(rf"\b{re.escape(n.name)}\s*\(", tests)]
    return min(called, key=lambda name: re.search(rf"\b{re.escape(name)}\s*\(", tests).start(), default=None)


def check_item(spec: TaskSpec, item: Example, open_book: bool):
    """Tests, a solution that parses and defines the function under test, and tests that call it."""
    tests = (item.tests or "").strip()
    if not tests or not re.search(r"^\s*(assert\b|def check\()", tests, re.M):
        return "no_tests", {}
    if not (item.reference or "").strip():
        return "no_solution", {}
    entry = entry_point_of(item.model_dump())
    if "def check(" in tests and not item.entry_point:
        return "no_entry_point", {"why": "check(candidate) tests need entry_point"}
    if entry is not None and not entry.isidentifier():
        return "no_entry_point", {"entry_point": entry}
    for field, source in (("reference", item.reference), ("tests", tests)):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError) as e:
            return "syntax_error", {"field": field, "error": f"line {getattr(e, 'lineno', '?')}: {e}"}
        if field == "reference":
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            if entry is None:
                return "tests_do_not_call_entry_point", {"defines": sorted(defined)}
            if entry not in defined:
                return "no_entry_point_function", {"entry_point": entry, "defines": sorted(defined)}
    if "def check(" not in tests and not re.search(rf"\b{re.escape(entry)}\b", tests):
        return "tests_do_not_call_entry_point", {"entry_point": entry}
    return None


def dedup_key(record: dict, text_key: str) -> str:
    """Different solutions of one problem are not duplicates: they reach the simplicity filter, which keeps the
    simplest."""
    return text_key + " || " + " ".join((record.get("reference") or "").split())


def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    """The program the answer wrote as the reference, and the reasoning before it as the rationale."""
    found = parse(spec, text)
    if not found.strip():
        return {"ok": False, "error": "the answer holds no code"}
    reasoning = rationale(text)
    return {"ok": True, "reference": found, **({"rationale": reasoning} if reasoning else {})}

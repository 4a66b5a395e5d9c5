"""Python code generation: the assistant writes a function in a ```python block; it runs against the tests.

HumanEval-style items (an `entry_point` and a signature+docstring prompt) are completed: when the answer does
not define the entry point itself, it is appended to the prompt. MBPP-style items show their asserts.
"""
from __future__ import annotations

import re

from protege.tasks.kinds import chat_with_shots
from protege.tasks.spec import Example, TaskSpec

MAX_NEW_TOKENS = 384
STOP: list[str] = []
_BLOCK = re.compile(r"```(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.S)


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


def program(spec: TaskSpec, item: Example, prediction: str) -> str:
    from protege.evaluate.sandbox import check_program

    solution = prediction
    if item.entry_point:
        if re.search(rf"^\s*def\s+{re.escape(item.entry_point)}\s*\(", prediction, re.M):
            # A whole function: keep the prompt's imports (HumanEval signatures use typing.List etc.).
            imports = [l for l in item.text.splitlines() if re.match(r"(from\s+\S+\s+)?import\s", l)]
            solution = "\n".join(imports + [prediction])
        else:
            solution = item.text + prediction  # a body completing the prompt's signature
    return check_program(solution, item.tests or "", item.entry_point if item.entry_point else None)


def score(spec: TaskSpec, item: Example, result) -> dict:
    return {"pass@1": float(result.passed), "status": result.status}

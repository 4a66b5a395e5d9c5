"""How each kind of task is prompted, parsed and scored item by item.

    kind = kind_of(spec)                      # the module for spec.kind
    messages = kind.prompt(spec, item, shots) # a chat; shots are earlier user/assistant turns
    prediction = kind.parse(spec, raw_text)   # what gets scored (JSON-serialisable)
    scores = kind.score(spec, item, prediction)   # per-item metric values, e.g. {"exact_match": 1, "f1": 1.0}

Every kind module has the same five names: MAX_NEW_TOKENS, STOP, prompt, target (the answer a perfect model
writes, used for few-shot turns and training), parse and score. Code is scored by running the program the
sandbox builds from `kind.program(spec, item, prediction)`; its `score` takes that execution result.
"""
from __future__ import annotations

from types import ModuleType

from protege.tasks.spec import TaskSpec


def kind_of(spec: TaskSpec) -> ModuleType:
    from protege.tasks.kinds import classification, code, extraction, math_word, qa

    return {"classification": classification, "extraction": extraction, "qa": qa, "math": math_word,
            "code": code}[spec.kind]


def chat_with_shots(spec: TaskSpec, instruction: str, render_input, shots, item) -> list[dict]:
    """The instruction heads the first user turn; each shot is a user turn and its target answer."""
    messages = []
    for i, shot in enumerate(shots):
        content = render_input(shot)
        messages += [{"role": "user", "content": f"{instruction}\n\n{content}" if i == 0 else content},
                     {"role": "assistant", "content": kind_of(spec).target(spec, shot)}]
    content = render_input(item)
    messages.append({"role": "user", "content": f"{instruction}\n\n{content}" if not shots else content})
    return messages


def first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""

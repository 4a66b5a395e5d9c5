"""Pieces the kinds share: the few-shot chat, the first line of a reply, and the plain forms of protocol
functions that most kinds use as they are (a kind assigns them: `few_shot_examples = first_seeds`).

    messages = chat_with_shots(spec, instruction, render_input, shots, item)
"""
from __future__ import annotations

from typing import Callable, Sequence

from protege.tasks.spec import Example, TaskSpec


def chat_with_shots(spec: TaskSpec, instruction: str, render_input: Callable[[Example], str],
                    shots: Sequence[Example], item: Example) -> list[dict]:
    """The instruction heads the first user turn; each shot is a user turn and its target answer."""
    from protege.tasks.kinds.registry import kind_of

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


def first_seeds(spec: TaskSpec, shots: int) -> list[Example]:
    """The first `shots` seeds (the few-shot examples of every unlabelled kind)."""
    return spec.seed_examples()[:shots] if shots > 0 else []


def as_is(spec: TaskSpec, row: dict) -> tuple[dict, None]:
    """`read_row` of a kind whose data rows need no rewriting."""
    return row, None


def one_group(spec: TaskSpec, seeds: list[Example]) -> dict:
    """`generation_groups` of an unlabelled kind: every request draws from all the seeds."""
    return {None: seeds}


def closed_book(spec: TaskSpec) -> bool:
    """`is_open_book` of a kind whose items never carry a passage."""
    return False


def input_key(record: dict, text_key: str) -> str:
    """`dedup_key` of a kind whose items are the same item when their inputs are."""
    return text_key


def own_value(metric: str, record: dict) -> float:
    """`item_score` of a kind whose records hold each metric's per-item value."""
    return float(record[metric])


def mean_metric_fn(spec: TaskSpec, name: str):
    """`metric_fn` of a kind whose metrics are means of per-item values."""
    from protege.scoring.summaries import mean_of

    return lambda records: mean_of(name)(records, None)

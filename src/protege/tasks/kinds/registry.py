"""The task kinds protege knows: name -> where its implementation lives. Adding a kind is one line here plus
its module (see docs/architecture.md, "Adding a task kind").

    kind = kind_of(spec)             # the implementation of spec.kind
    kind = kind_named("qa")          # by name (what results.json records)
    names()                          # every registered kind, for errors and help

An entry is "module" (a module with the TaskKind names, as the built-ins are) or "module:attribute" (an object
in a module, e.g. a class instance a test registers). Imports happen on first use, so a kind's dependencies
load only when a task of that kind runs.
"""
from __future__ import annotations

import importlib

from protege.tasks.kinds.protocol import TaskKind

KINDS: dict[str, str] = {
    "classification": "protege.tasks.kinds.classification",
    "extraction": "protege.tasks.kinds.extraction",
    "qa": "protege.tasks.kinds.qa",
    "math": "protege.tasks.kinds.math_word",
    "code": "protege.tasks.kinds.code",
}


def names() -> list[str]:
    return list(KINDS)


def kind_named(name: str) -> TaskKind:
    if name not in KINDS:
        raise KeyError(f"task kind {name!r} is not registered; registered kinds are {', '.join(KINDS)}")
    where, _, attribute = KINDS[name].partition(":")
    found = importlib.import_module(where)
    return getattr(found, attribute) if attribute else found


def kind_of(spec) -> TaskKind:
    return kind_named(spec.kind)


def check_kind_name(name: str) -> str:
    """Pydantic validator of `kind:` in a task spec: one of the registered kinds."""
    if name not in KINDS:
        raise ValueError(f"{name!r} is not a task kind; use one of {', '.join(KINDS)}")
    return name

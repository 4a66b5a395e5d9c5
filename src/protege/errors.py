"""The one error type users see for bad input: it names the file, the field and what to change; and `Strict`, the
base of every config and spec model, which rejects unknown keys so a misspelt one is an error, not ignored."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """One or more problems in a config or task spec, all reported at once."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


def pydantic_problems(exc) -> list[str]:
    """Turn a pydantic ValidationError into 'field.path: message' lines, with a hint for unknown keys."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key; remove it or check its spelling")
        elif err["type"] == "missing":
            problems.append(f"{where}: required field is missing")
        else:
            problems.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return problems

"""Run a slice of a bench: `protege bench CONFIG --only FIELD=VALUE ...`.

    protege bench configs/bench-real-teachers.yaml --only task=mbpp --only teacher=qwen2.5-coder-1.5b-instruct
    protege bench configs/bench-real-teachers.yaml --only student=smollm2-135m-instruct --status

A matrix of 18 cells at about an hour each on two CPU cores does not finish in one sitting: run it a slice at a
time (one task or teacher per session, `protege runs pack` between them), or one slice per machine. FIELD is
task, teacher, student or method; VALUE is the name as the config lists it or as the report shows it (a model's
short name, such as `qwen2.5-coder-1.5b-instruct` for `bundled:qwen2.5-coder-1.5b-instruct`). Terms on different
fields must all hold; several terms on one field are alternatives. Only the selected cells and the data they read
are run; the report is still written from every finished cell, the others listed as not finished.
"""
from __future__ import annotations

from protege.benchmark.matrix import Cell, short_names
from protege.errors import ConfigError

FIELDS = ("task", "teacher", "student", "method")


def parse_only(terms: list[str]) -> dict[str, set[str]]:
    """{"task": {"mbpp"}, ...} from FIELD=VALUE terms; a malformed term or unknown field is refused."""
    wanted: dict[str, set[str]] = {}
    problems = []
    for term in terms:
        field, sep, value = term.partition("=")
        field, value = field.strip(), value.strip()
        if not sep or not value:
            problems.append(f"{term!r}: write FIELD=VALUE, such as task=mbpp")
        elif field not in FIELDS:
            problems.append(f"{term!r}: {field!r} is not a field to select on; choose one of {', '.join(FIELDS)}")
        else:
            wanted.setdefault(field, set()).add(value)
    if problems:
        raise ConfigError("--only", problems)
    return wanted


def _shown(cell: Cell, field: str, shorts: dict[str, str]) -> str:
    """This cell's value of `field` as the report shows it: the task's spec name, a model's short name."""
    value = getattr(cell, field)
    return cell.task_name if field == "task" else shorts.get(value, value)


def _names(cell: Cell, field: str, shorts: dict[str, str]) -> set[str]:
    """What a term may call this cell's value of `field`: as the config lists it or as the report shows it."""
    return {getattr(cell, field), _shown(cell, field, shorts)}


def select_cells(cells: list[Cell], terms: list[str]) -> list[Cell]:
    """The cells every field's terms match (all cells when `terms` is empty); a value that names no cell of the
    bench is refused with the values it could be."""
    wanted = parse_only(terms)
    shorts = short_names(list(dict.fromkeys([c.teacher for c in cells] + [c.student for c in cells])))
    problems = []
    for field, values in wanted.items():
        known = set().union(*(_names(c, field, shorts) for c in cells))
        choices = sorted({_shown(c, field, shorts) for c in cells})
        for value in sorted(values - known):
            problems.append(f"{field}={value}: no cell of this bench has it; choose one of {', '.join(choices)}")
    if problems:
        raise ConfigError("--only", problems)
    return [c for c in cells if all(_names(c, field, shorts) & values for field, values in wanted.items())]

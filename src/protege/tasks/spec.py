"""The task spec: what a user writes to describe their task (documented in docs/tasks.md).

    spec = load_task("trec6")                 # a built-in spec, or a path to a YAML file
    spec.seeds, spec.test_items(), spec.label_names

Paths in a spec are relative to the spec file; a path starting with `data:` is read from the data directory
(`PROTEGE_DATA`, defaulting to `../shared/data` beside the checkout when it exists).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from protege.errors import ConfigError, pydantic_problems

BUILTIN_DIR = Path(__file__).parent / "builtin"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Label(Strict):
    name: str
    verbalizer: Optional[str] = None  # the word the model writes; defaults to the name
    description: str = ""

    @property
    def word(self) -> str:
        return self.verbalizer or self.name


class DataSource(Strict):
    """A file of examples and how to read it."""

    path: str
    format: Literal["jsonl", "json", "csv", "trec"] = "jsonl"
    fields: dict[str, str] = {}  # protege field -> field in the file, e.g. {text: question, label: category}
    limit: Optional[int] = None
    per_label: Optional[int] = None  # take this many per label (classification seeds/validation)
    skip_per_label: int = 0  # skip this many per label first (keeps validation apart from seeds)


class Example(Strict):
    text: str
    label: Optional[str] = None
    id: Optional[str] = None


class TaskSpec(Strict):
    name: str
    kind: Literal["classification", "extraction", "qa", "code"]
    description: str
    labels: Optional[list[Label]] = None
    seeds: list[Example] | DataSource
    validation: Optional[DataSource] = None
    test: DataSource
    metric: Literal["accuracy", "macro_f1", "exact_match", "f1", "pass@1", "slot_f1"] = "accuracy"
    source_file: Optional[str] = None  # set by the loader; where relative paths are resolved

    @property
    def label_names(self) -> list[str]:
        return [l.name for l in self.labels or []]

    def label(self, name: str) -> Label:
        return next(l for l in self.labels or [] if l.name == name)

    def resolve_path(self, path: str) -> Path:
        if path.startswith("data:"):
            return data_dir() / path[len("data:") :]
        p = Path(path)
        if not p.is_absolute() and self.source_file:
            p = Path(self.source_file).parent / p
        return p

    def seed_examples(self) -> list[Example]:
        from protege.tasks.loaders import load_examples

        if isinstance(self.seeds, DataSource):
            return load_examples(self, self.seeds, "seeds")
        return [e if e.id else e.model_copy(update={"id": f"seed-{i}"}) for i, e in enumerate(self.seeds)]

    def test_examples(self) -> list[Example]:
        from protege.tasks.loaders import load_examples

        return load_examples(self, self.test, "test")

    def validation_examples(self) -> list[Example]:
        from protege.tasks.loaders import load_examples

        return load_examples(self, self.validation, "validation") if self.validation else []


def data_dir() -> Path:
    """Where built-in tasks read their data: $PROTEGE_DATA, else ../shared/data beside the checkout."""
    env = os.environ.get("PROTEGE_DATA")
    if env:
        return Path(env)
    for base in [Path.cwd(), *Path(__file__).resolve().parents]:
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path("../shared/data")


def builtin_tasks() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_task(name_or_path: str) -> TaskSpec:
    """Load a built-in task by name, or a YAML spec by path; every problem is reported at once."""
    path = Path(name_or_path)
    if not path.exists():
        builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
        if not builtin.exists():
            raise ConfigError(
                str(name_or_path),
                [f"task: no such file, and not a built-in task; built-ins are {', '.join(builtin_tasks())}"],
            )
        path = builtin
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(str(path), [f"not valid YAML: {e}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["(top level): a task spec is a mapping of fields, see docs/tasks.md"])
    raw["source_file"] = str(path)
    try:
        spec = TaskSpec(**raw)
    except ValidationError as e:
        raise ConfigError(str(path), pydantic_problems(e)) from None
    problems = _check_semantics(spec)
    if problems:
        raise ConfigError(str(path), problems)
    return spec


def _check_semantics(spec: TaskSpec) -> list[str]:
    problems = []
    if spec.kind == "classification":
        if not spec.labels:
            problems.append("labels: a classification task needs a list of labels")
        names = spec.label_names
        if len(set(names)) != len(names):
            problems.append("labels: label names must be unique")
        if isinstance(spec.seeds, list):
            for i, ex in enumerate(spec.seeds):
                if ex.label not in names:
                    problems.append(f"seeds[{i}].label: {ex.label!r} is not one of the labels {names}")
    for field in ("test", "validation"):
        src = getattr(spec, field)
        if src is not None and not spec.resolve_path(src.path).exists():
            problems.append(
                f"{field}.path: file {spec.resolve_path(src.path)} does not exist; fix the path, or set "
                "PROTEGE_DATA to the folder holding the data sets"
            )
    if isinstance(spec.seeds, DataSource) and not spec.resolve_path(spec.seeds.path).exists():
        problems.append(f"seeds.path: file {spec.resolve_path(spec.seeds.path)} does not exist")
    return problems

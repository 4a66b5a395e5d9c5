"""What a task kind is: everything protege does differently for classification, extraction, qa, maths or code.

    kind = kind_of(spec)        # the registered implementation of spec.kind (protege.tasks.kinds.registry)
    kind.prompt(spec, item, shots); kind.parse(spec, raw); kind.score_items(spec, items, predictions, ...)

A kind is any object with these names; the built-in kinds are modules (protege/tasks/kinds/<kind>.py), a test
registers a small class. Nothing outside the kinds package compares `spec.kind` with a name: it asks the kind.
Shared pieces a kind may call are plain functions (kinds/chat.py, kinds/sections.py, protege.scoring), never a
base class.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:
    from protege.tasks.spec import Example, TaskSpec

# A curation verdict: None (keep), or (reason, detail) for the drops file.
Verdict = Optional[tuple[str, dict]]


@runtime_checkable
class TaskKind(Protocol):
    # --- the spec -----------------------------------------------------------------------------------------
    NAME: str  # the value of `kind:` in a task spec
    METRICS: tuple[str, ...]  # metrics a spec may name as its headline; the first is the default
    COLUMNS: list[tuple[str, str]]  # report table: (metric key, column header)
    SECONDARY_METRICS: tuple[str, ...]  # summary values besides the headline that tables show ("other metrics")
    REQUIRED_FIELDS: tuple[str, ...]  # Example fields every data row must have
    LABELLED: bool  # items carry one of spec.labels: seeds grouped by label, label-likelihood scoring possible
    EXECUTES_CODE: bool  # scoring runs the answers in the sandbox, so it needs allow_code_execution
    REWRITES_ANSWERS: bool  # generate.mode answers/cooperative may rewrite its references (answer_record)

    def check_spec(self, spec: TaskSpec) -> list[str]:
        """Problems with a spec of this kind ("field: what is wrong; what to write"), [] when none."""

    def read_row(self, spec: TaskSpec, row: dict) -> tuple[Optional[dict], Optional[str]]:
        """A data file's row (Example fields, None dropped) as Example fields, or (None, why it is unusable)."""

    # --- answering: prompt, target, parse, score ------------------------------------------------------------
    MAX_NEW_TOKENS: int  # a student's or teacher's answer
    STOP: list[str]
    # None, or a regex on the output after which nothing changes the parsed answer: evaluation stops decoding there
    STOP_PATTERN: Optional[str]
    FEW_SHOTS: int  # shots of the documented few-shot baselines

    def few_shot_examples(self, spec: TaskSpec, shots: int) -> list[Example]:
        """`shots` seeds to show before a question (per label for labelled kinds)."""

    def prompt(self, spec: TaskSpec, item: Example, shots: Sequence[Example] = ()) -> list[dict]:
        """The chat that asks for the item's answer; each shot is an earlier user turn and its target."""

    def target(self, spec: TaskSpec, item: Example) -> str:
        """The answer a perfect model writes (few-shot turns and training targets)."""

    def parse(self, spec: TaskSpec, output: str):
        """What gets scored, read from a model's output (JSON-serialisable)."""

    def read_prediction(self, spec: TaskSpec, value):
        """A prediction from another tool's file (`protege score`) in the form `parse` returns."""

    def score_items(self, spec: TaskSpec, items: Sequence[Example], predictions: list,
                    allow_code_execution: bool) -> list[dict]:
        """Per-item scores, e.g. {"exact_match": 1.0, "f1": 1.0}; they are merged into the eval records."""

    def item_score(self, metric: str, record: dict) -> float:
        """One record's share of `metric` in [0, 1] (preference pairs, RL rewards, paired tests)."""

    def item_correct(self, record: dict) -> bool:
        """The record's right/wrong that a McNemar test compares."""

    def summarize(self, spec: TaskSpec, records: list[dict], resamples: int) -> dict:
        """Every metric of the kind over the records, each with `<metric>_ci` (protege.scoring.summaries)."""

    def metric_fn(self, spec: TaskSpec, name: str):
        """records -> the value of one metric (what bootstraps and paired tests resample)."""

    # --- synthetic data: the teacher's items, curation --------------------------------------------------------
    GENERATION_MAX_NEW_TOKENS: int  # a whole new item needs more room than an answer
    MAX_TEXT_CHARS: int  # curation's longest `text` when curate.max_chars is not set
    COMPARED_FIELDS: tuple[str, ...]  # the fields decontamination compares with the test set

    def generation_groups(self, spec: TaskSpec, seeds: list[Example]) -> dict[Optional[str], list[Example]]:
        """Seeds by what a request is conditioned on: {label: seeds} for labelled kinds, else {None: seeds}."""

    def generation_prompt(self, spec: TaskSpec, group: Optional[str], shown: Sequence[Example],
                          topic: Optional[str], persona: Optional[str]) -> list[dict]:
        """Ask the teacher for one new item of `group`, showing `shown` seeds."""

    def generation_max_new_tokens(self, spec: TaskSpec) -> int:
        """Token room for one new item of this spec."""

    def read_generated(self, spec: TaskSpec, raw: str) -> tuple[Optional[dict], Optional[str]]:
        """Example fields from the teacher's reply, or (None, what is missing or wrong)."""

    def is_open_book(self, spec: TaskSpec) -> bool:
        """Whether items of this spec come with a passage to answer from (SQuAD-style seeds carry one)."""

    def check_item(self, spec: TaskSpec, item: Example, open_book: bool) -> Verdict:
        """Curation's schema check of one generated item (lengths are checked before)."""

    def dedup_key(self, record: dict, text_key: str) -> str:
        """What makes two generated records exact duplicates (text_key: their normalised input)."""

    def answer_record(self, spec: TaskSpec, item: dict, text: str) -> dict:
        """The item's reference rewritten from a teacher's answer `text`, or {"ok": False, "error": why}."""

"""Who may read the test set, and a log of every time it is read.

Everything that chooses (prompt templates, few-shot examples, checkpoints, curation thresholds, teacher gates,
early stopping) chooses with the seeds or the validation split. The test set is read only through
`read_test_set`, for final evaluation or decontamination, and each read appends one line to the run's access
log; the report shows how many reads there were:

    items = read_test_set(spec, run_dir / LOG_NAME, stage="eval-3f2a...", purpose="final evaluation", who=row)
    count_reads(run_dir / LOG_NAME)                      # -> how many times this run read the test set
    shots = ensure_not_test(spec, shots, "few-shot examples")   # raises if any shot is a test item

Both errors are ConfigErrors, so the CLI prints them and exits 2. Tests: `pytest -q tests/test_test_access.py`.
"""
from __future__ import annotations

import getpass
import os
import socket
import uuid
from pathlib import Path
from typing import Iterable, Optional, Union

from protege.errors import ConfigError
from protege.store import JsonlLog, StageDir, content_key, now_iso
from protege.tasks.loaders import fingerprint, test_fingerprints
from protege.tasks.spec import Example, TaskSpec

LOG_NAME = "test-access.jsonl"
# Decontamination reads the test set to remove its items from training data; it chooses nothing.
ALLOWED_PURPOSES = ("final evaluation", "decontamination")
FIX = "choose with the validation split or seeds (`validation:` in the task spec), never the test set"


class TestSetAccessError(ConfigError):
    """A stage asked to read the test set for something other than final evaluation or decontamination."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, spec: TaskSpec, stage: str, purpose: str):
        self.stage, self.purpose = stage, purpose
        super().__init__(_source(spec), [
            f"stage {stage!r} asked to read the test set for {purpose!r}; only "
            f"{' and '.join(ALLOWED_PURPOSES)} may read it. To choose, use the validation split "
            "(`validation:` in the task spec) or the seeds instead"])


class TestSetSelectionError(ConfigError):
    """A choosing step (few-shot examples, checkpoints, thresholds, gates) was given test items."""

    __test__ = False

    def __init__(self, spec: TaskSpec, choice: str, ids: list[str], how: str):
        self.choice, self.ids = choice, ids
        shown = ", ".join(ids[:5]) + (f", ... ({len(ids) - 5} more)" if len(ids) > 5 else "")
        super().__init__(_source(spec), [
            f"{choice}: {len(ids)} of the items it chooses with are from the test set ({how}): {shown}; {FIX}"])


def read_test_set(spec: TaskSpec, log_path: Path, stage: Union[str, StageDir], purpose: str,
                  who: Optional[str] = None, limit: Optional[int] = None) -> list[Example]:
    """The test items (the first `limit` when given), after logging who read them, when, where and why."""
    stage_name = f"{stage.stage}-{stage.key}" if isinstance(stage, StageDir) else stage
    if purpose not in ALLOWED_PURPOSES:
        raise TestSetAccessError(spec, stage_name, purpose)  # before reading, so nothing is logged
    items = spec.test_examples()
    if limit is not None:
        items = items[:limit]
    ids = [e.id for e in items]
    try:
        JsonlLog(log_path).append([{
            "id": uuid.uuid4().hex[:16],  # one per read: JsonlLog keeps the first record of each id
            "when": now_iso(), "who": who or default_who(), "stage": stage_name, "purpose": purpose,
            "task": spec.name, "items": len(items), "ids_hash": content_key(ids, 16),
        }])
    except OSError as e:  # no read goes unlogged: without a log there is no read
        from protege.errors import ConfigError

        raise ConfigError(str(log_path), [
            f"cannot record this read of the test set here ({e.strerror or e}); every read is logged beside what "
            "it scores, so put the predictions (or the runs folder) in a folder you can write"]) from None
    return items


def read_log(log_path: Path) -> list[dict]:
    """Every logged read, oldest first ([] when the test set was never read)."""
    return JsonlLog(log_path).read()


def count_reads(log_path: Path, purpose: Optional[str] = None) -> int:
    """How many times the test set was read, optionally only for one purpose."""
    return sum(1 for r in read_log(log_path) if purpose is None or r.get("purpose") == purpose)


def default_who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}/pid {os.getpid()}"


def ensure_not_test(spec: TaskSpec, examples: Iterable[Union[Example, dict]], choice: str) -> list:
    """Return `examples` unchanged, or raise TestSetSelectionError if any is a test item.

    An item is a test item when its id starts with `test-`, or when its normalised (text, context) equals a
    test item's: a validation file that is a copy of the test file gets `validation-*` ids but is caught.
    """
    examples = list(examples)
    by_id = [_get(e, "id") for e in examples if str(_get(e, "id") or "").startswith("test-")]
    if by_id:
        raise TestSetSelectionError(spec, choice, by_id, "test ids")
    fingerprints = test_fingerprints(spec)
    by_content = [str(_get(e, "id")) for e in examples if _fingerprint(e) in fingerprints]
    if by_content:
        raise TestSetSelectionError(spec, choice, by_content, "same text as a test item")
    return examples


def _fingerprint(example: Union[Example, dict]) -> tuple[str, str]:
    return fingerprint(_get(example, "text"), _get(example, "context"))


def _get(example: Union[Example, dict], field: str):
    return example.get(field) if isinstance(example, dict) else getattr(example, field, None)


def _source(spec: TaskSpec) -> str:
    return spec.source_file or f"task {spec.name}"

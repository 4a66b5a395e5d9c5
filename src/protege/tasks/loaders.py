"""Read examples from JSONL, JSON, CSV, TREC, SQuAD, PolyAI span, MBPP and HumanEval files, with a field mapping.

Ids are stable: `<split>-<row number in the file>`, so samples and scores can be joined across runs (a `rows`
slice keeps the file's row numbers, so two slices of one file never share an id).
"""
from __future__ import annotations

import csv
import functools
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

from protege.errors import ConfigError
from protege.tasks.kinds.registry import kind_of
from protege.tasks.spec import DataSource, Example, TaskSpec


def read_rows(path: Path, fmt: str) -> list[dict]:
    """The file's rows as dicts; a malformed row is a ConfigError naming the file, the line and what was wrong."""
    try:
        return _read_rows(path, fmt)
    except _BadRow as e:
        raise ConfigError(str(path), [f"line {e.line}: {e.why} (format {fmt}); fix or remove that line"]) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        where = f"line {e.lineno}: " if isinstance(e, json.JSONDecodeError) else ""
        what = f"no field {e}" if isinstance(e, KeyError) else str(e)
        raise ConfigError(str(path), [f"{where}not a readable {fmt} file: {what}"]) from None


class _BadRow(ValueError):
    def __init__(self, line: int, why: str):
        super().__init__(why)
        self.line, self.why = line, why


def _lines(text: str, read) -> list[dict]:
    """read(json object) for each non-empty JSONL line, with the line number in any error."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(read(json.loads(line)))
        except json.JSONDecodeError as e:
            raise _BadRow(n, f"not JSON ({e.msg} at column {e.colno})") from None
        except KeyError as e:
            raise _BadRow(n, f"no field {e}") from None
        except (TypeError, AttributeError) as e:
            raise _BadRow(n, f"unexpected shape: {e}") from None
    return rows


def _read_rows(path: Path, fmt: str) -> list[dict]:
    if fmt == "trec":
        rows = []
        # TREC files are Latin-1 (a few accented names); coarse label before ':', fine after.
        for n, line in enumerate(path.read_text(encoding="latin-1").splitlines(), 1):
            if line.strip():
                if " " not in line.strip() or ":" not in line.split(" ", 1)[0]:
                    raise _BadRow(n, "expected `COARSE:fine question text`")
                head, text = line.split(" ", 1)
                rows.append({"label": head.split(":")[0], "fine_label": head, "text": text.strip()})
        return rows
    if fmt == "csv":
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    if fmt == "squad":
        return _squad_rows(json.loads(path.read_text()))
    if fmt == "spans":
        return [_span_row(item) for item in json.loads(path.read_text())]
    if fmt == "mbpp":
        return _lines(_text(path), _mbpp_row)
    if fmt == "humaneval":
        return _lines(_text(path), _humaneval_row)
    if fmt == "json":
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data.get("data", [])
    return _lines(_text(path), lambda obj: obj if isinstance(obj, dict) else _not_object(obj))


def _not_object(obj):
    raise TypeError(f"a JSON {type(obj).__name__}, not an object with fields")


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()


def _squad_rows(data: dict) -> list[dict]:
    """One row per question, in file order; unanswerable questions get answers []."""
    rows = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else [a["text"] for a in qa["answers"]]
                rows.append({"text": qa["question"], "context": paragraph["context"], "answers": answers,
                             "qid": qa["id"], "title": article["title"]})
    return rows


def _span_row(item: dict) -> dict:
    """PolyAI span extraction: character spans (startIndex omitted when 0) -> (slot, value) pairs."""
    text = item["userInput"]["text"]
    spans = []
    for label in item.get("labels", []):
        span = label["valueSpan"]
        spans.append((label["slot"], text[span.get("startIndex", 0) : span["endIndex"]]))
    asked = item.get("context", {}).get("requestedSlots", [])
    return {"text": text, "spans": spans, "context": ", ".join(asked) if asked else None}


def _mbpp_row(item: dict) -> dict:
    """MBPP: the problem plus its asserts is the prompt (as in the paper); setup code runs before the asserts."""
    asserts = "\n".join(item["test_list"])
    setup = item.get("test_setup_code", "").replace("\r\n", "\n").strip()
    return {"text": f"{item['text']}\nYour code should pass these tests:\n{asserts}",
            "tests": f"{setup}\n{asserts}" if setup else asserts,
            "reference": item["code"].replace("\r\n", "\n"), "task_id": item["task_id"]}


def _humaneval_row(item: dict) -> dict:
    return {"text": item["prompt"], "tests": item["test"], "entry_point": item["entry_point"],
            "reference": item["prompt"] + item["canonical_solution"], "task_id": item["task_id"]}


# The data set's own id of a row, by format: SQuAD question ids, HumanEval/MBPP task ids, an `id` column.
NATIVE_ID_FIELDS = ("qid", "task_id", "id")


def selected_rows(spec: TaskSpec, source: DataSource, split: str) -> list[tuple[int, dict]]:
    """(row number in the file, row) after the source's skip_rows and rows slices."""
    rows = list(enumerate(read_rows(spec.resolve_path(source.path), source.format)))
    if source.skip_rows is not None:
        skipped = {i for i, _ in rows[_slice(source.skip_rows, spec, f"{split}.skip_rows")]}
        rows = [(i, row) for i, row in rows if i not in skipped]
    if source.rows is not None:
        rows = rows[_slice(source.rows, spec, f"{split}.rows")]
    return rows


def native_ids(spec: TaskSpec, source: DataSource, split: str) -> dict[str, str]:
    """The data set's own id of each row (SQuAD question id, HumanEval/MBPP task id, an `id` column) -> protege's
    `<split>-<row>` id, for predictions made by other tools (lm-eval, EvalPlus) that use the former."""
    out = {}
    for i, row in selected_rows(spec, source, split):
        native = next((row[f] for f in NATIVE_ID_FIELDS if row.get(f) is not None), None)
        if native is not None:
            out[str(native)] = f"{split}-{i}"
    return out


def load_examples(spec: TaskSpec, source: DataSource, split: str) -> list[Example]:
    path = spec.resolve_path(source.path)
    rows = selected_rows(spec, source, split)
    examples, problems = [], []
    kind = kind_of(spec)
    for i, row in rows:
        mapped = {field: row.get(source.fields.get(field, field)) for field in Example.model_fields}
        missing = [f for f in kind.REQUIRED_FIELDS if mapped.get(f) is None]
        if missing:
            name = source.fields.get(missing[0], missing[0])
            problems.append(f"{split}.fields.{missing[0]}: row {i} of {path} has no field {name!r} (has {sorted(row)});"
                            f" map it with fields: {{{missing[0]}: <column>}}")
            break
        fields, problem = kind.read_row(spec, {k: v for k, v in mapped.items() if v is not None and k != "id"})
        if problem:
            problems.append(f"{split}: row {i} of {path} {problem}")
            if len(problems) > 5:
                break
            continue
        examples.append(_example(fields, f"{split}-{i}"))
    if problems:
        raise ConfigError(spec.source_file or spec.name, problems)
    if split != "test":
        kept = _drop_test_twins(spec, examples)
        if examples and len(kept) < len(examples) / 2:
            raise ConfigError(spec.source_file or spec.name, [
                f"{split}: {len(examples) - len(kept)} of its {len(examples)} rows repeat test items; {split} must "
                "come from outside the test set (another file, or `rows`/`skip_rows` that keep them apart)"])
        examples = kept
    if source.per_label is not None:
        examples = _per_label(examples, source.per_label, source.skip_per_label)
    if source.limit is not None:
        examples = examples[: source.limit]
    return examples


def _example(row: dict, item_id: str) -> Example:
    """Example fields (as the kind's read_row returns them) with file types made Example's."""
    row = dict(row)
    if "answers" in row and isinstance(row["answers"], (str, int, float)):
        row["answers"] = [str(row["answers"])]
    if "tests" in row and isinstance(row["tests"], list):
        row["tests"] = "\n".join(row["tests"])
    if isinstance(row.get("label"), (int, float)):
        row["label"] = str(row["label"])
    if "text" in row:
        row["text"] = str(row["text"])
    return Example(id=item_id, **row)


def _drop_test_twins(spec: TaskSpec, examples: list[Example]) -> list[Example]:
    """Seeds and validation lose rows whose input repeats a test item's (Banking77's train file has two such
    messages; Restaurant-8k repeats short replies), so no choice can be made with a test item."""
    test = test_fingerprints(spec)
    return [e for e in examples if fingerprint(e.text, e.context) not in test]


def fingerprint(text: str | None, context: str | None) -> tuple[str, str]:
    """An item's input, normalised as curation compares items: lowercase, punctuation dropped, spaces collapsed."""
    from protege.tasks.text import normalise

    return normalise(text), normalise(context)


def test_fingerprints(spec: TaskSpec) -> frozenset:
    """Fingerprints of every test item, cached per spec and test-file version (an edited file is read again)."""
    path = spec.resolve_path(spec.test.path)
    stat = path.stat()
    return _fingerprints_cached(spec.model_dump_json(), str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _fingerprints_cached(spec_json: str, path: str, mtime_ns: int, size: int) -> frozenset:
    # Not a logged test access: it keeps only normalised inputs (no labels, no answers) and can only remove
    # items from other splits or refuse a choice; nothing it learns shapes a choice or a score.
    spec = TaskSpec.model_validate_json(spec_json)
    return frozenset(fingerprint(e.text, e.context) for e in load_examples(spec, spec.test, "test"))


def _slice(text: str, spec: TaskSpec, split: str) -> slice:
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        if not 1 < len(parts) <= 3:
            raise ValueError
    except ValueError:
        raise ConfigError(spec.source_file or spec.name,
                          [f"{split}: {text!r} is not a slice; write start:stop, e.g. \"10:510\""]) from None
    return slice(*parts)


def _per_label(examples: list[Example], k: int, skip: int) -> list[Example]:
    """A fixed random sample of k examples per label (after skipping `skip`), in file order."""
    by_label = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    chosen = set()
    for label, items in by_label.items():
        rng = random.Random(f"per-label-{label}")
        shuffled = items[:]
        rng.shuffle(shuffled)
        chosen.update(e.id for e in shuffled[skip : skip + k])
    return [e for e in examples if e.id in chosen]

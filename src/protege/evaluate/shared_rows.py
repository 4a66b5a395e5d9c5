"""Evaluation rows that do not depend on a run's training data, computed once and shared by every eval stage.

A baseline row (the student zero- or few-shot) and the teacher row depend on the task, the model, the shots,
the scoring and the test slice, not on what the teacher generated or how the student was trained. A bench
evaluates the same student baseline once per teacher and the same teacher once per student; this module makes
the second and later asks read the first one's records instead of recomputing them.

    row = SharedRow(runs_dir / task_name, spec, model_name, shots, ecfg, scoring)
    with row.locked():                        # a parallel cell asking for the same row waits here
        if row.finished(items):
            records, memory = row.records(items), row.memory()
        else:
            records = evaluate_lm(lm, spec, items, shots, row.log, ...)   # resumes from what the log holds
            row.finish(memory)

A row on a slice of the test set (eval.max_test_items) takes its items' records from the same row finished on
the whole test set, when there is one (a bench slice after a full experiment, say), as it adopts a finished
`protege eval` run.

Layout: `runs/<task>/eval-row-<key>/samples.jsonl` (append-only per-item records, as every eval writes) and
`memory.json` (written last: the row is finished). Each eval stage still gets its own copy of the records in
`samples/`, so every number in results.json is traceable inside the stage's folder.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from protege.config import EvalConfig
from protege.models.precision import key_part
from protege.store import SAMPLES, JsonlLog, atomic_write_json, content_key, read_json
from protege.tasks.spec import Example, TaskSpec

FINISHED = "memory.json"  # written last: the row is finished (a shared row's MANIFEST, for runs_carry too)
PREFIX = "eval-row-"


class SharedRow:
    def __init__(self, task_dir: Path, spec: TaskSpec, model_name: str, shots: Sequence[Example], ecfg: EvalConfig,
                 scoring: str):
        setting = {"task": spec.key_fields(), "model": model_name,
                   "shots": [s.id for s in shots], "scoring": scoring, "max_test_items": ecfg.max_test_items,
                   "allow_code_execution": ecfg.allow_code_execution, **key_part(model_name)}
        self.path = Path(task_dir) / f"{PREFIX}{content_key(setting)}"
        # the same row on the whole test set: a slice of it is the same computation per item
        self.whole = None if ecfg.max_test_items is None else \
            Path(task_dir) / f"{PREFIX}{content_key({**setting, 'max_test_items': None})}"
        self.max_test_items, self.scoring, self.adopted_from = ecfg.max_test_items, scoring, None
        self.log = JsonlLog(self.path / SAMPLES)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on this row (released when the process dies, so a kill never wedges it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def finished(self, items: Sequence[Example]) -> bool:
        return (self.path / FINISHED).exists() and {it.id for it in items} <= self.log.ids()

    def records(self, items: Sequence[Example]) -> list[dict]:
        by_id = {r["id"]: r for r in self.log.read()}
        return [by_id[it.id] for it in items]

    def memory(self) -> dict:
        return read_json(self.path / FINISHED)

    def adopt_model_eval(self, spec: TaskSpec, model_name: str, n_shots: int, items: Sequence[Example],
                         allow_code_execution: bool) -> bool:
        """Take the records of a finished `protege eval`/`protege baselines` run of this model on these items with
        the same shots and scoring (`runs/<task>/model-eval-<key>/`), when there is one: the same computation, so
        it is not run twice. Its records are copied into this row's log and the row finished; False when none."""
        from protege.evaluate.model_eval import model_eval_stage
        from protege.tasks.kinds import kind_of

        if kind_of(spec).EXECUTES_CODE and not allow_code_execution:
            return False  # a model-eval of a code task always ran the code; this row would not
        for limit in dict.fromkeys([self.max_test_items, None]):  # its own slice, or the whole test set
            _, stage = model_eval_stage(self.path.parent.parent, spec, model_name, n_shots, limit, self.scoring)
            if stage.complete and self._adopt(stage.path, items, {"peak_rss_mb": None, "weights_mb": None,
                                                                  "scoring": self.scoring}):
                return True
        return False

    def adopt_whole_row(self, items: Sequence[Example]) -> bool:
        """Take these items' records from the finished row of the same model, shots and scoring on the whole test
        set (another run's max_test_items: None); False when there is none or it lacks an item."""
        if self.whole is None or not (self.whole / FINISHED).exists():
            return False
        return self._adopt(self.whole, items, read_json(self.whole / FINISHED))

    def _adopt(self, source: Path, items: Sequence[Example], memory: dict) -> bool:
        """Copy these items' records from a finished computation's samples into this row's log and finish the row
        with `memory` (naming the source); False, and nothing written, when the source lacks an item."""
        by_id = {r["id"]: r for r in JsonlLog(source / SAMPLES).read()}
        if not {it.id for it in items} <= set(by_id):
            return False
        have = self.log.ids()
        self.log.append([by_id[it.id] for it in items if it.id not in have])
        self.adopted_from = str(source)
        self.finish({**memory, "adopted_from": self.adopted_from})
        return True

    def finish(self, memory: dict) -> None:
        atomic_write_json(self.path / FINISHED, memory)

    def records_or_compute(self, spec: TaskSpec, model_name: str, n_shots: int, items: Sequence[Example],
                           allow_code_execution: bool, compute, label: str) -> tuple[list[dict], dict]:
        """(records, memory) of this row, under its lock: a finished row read, else a finished model-eval run of
        the same computation or this row finished on the whole test set adopted, else `compute(self.log) ->
        (records, memory)` (it resumes from the log) and the row finished."""
        with self.locked():
            if self.finished(items):
                return self.records(items), self.memory()
            if self.adopt_model_eval(spec, model_name, n_shots, items, allow_code_execution) or \
                    self.adopt_whole_row(items):
                print(f"[eval] {label}: adopted the finished records of {self.adopted_from}")
                return self.records(items), self.memory()
            records, memory = compute(self.log)
            self.finish(memory)
            return records, memory

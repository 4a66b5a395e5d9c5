"""Curate stage: keep the generated examples that survive every filter, and say what each filter dropped and why.

    result = curate(spec, cfg, generated, test=test_items, validation=validation_items)
    result.kept, result.dropped, result.filters, result.code_stats
    run_curate(spec, cfg, stage, generated)     # the pipeline stage: reads the test set (logged), writes files

Filters, in this order; an item is dropped by the first one it fails (modules under synth/filters/):
  schema         well-formed for the task's kind, lengths within limits          schema.py
  exact_dedup    same normalised input (code: same input and same solution)      dedup.py
  decontaminate  copies or paraphrases of test and validation inputs             decontam.py
  execution      code: the solution fails its own tests in the sandbox           execution.py
  simplicity     code: too big, branchy or unclean, or a simpler solution to the same problem passed
  near_dedup     MinHash word-shingle Jaccard with an earlier kept item          dedup.py, minhash.py
  near_dedup_embedding   MiniLM cosine with an earlier kept item (off by default)
Items are taken in id order, so of two duplicates the one with the smaller id is kept whatever the order in
which generation appended them. Stage files: data/train.jsonl (kept rows: the Example fields and id),
drops.jsonl (every dropped record with dropped_by, reason and detail), curation.json (per-filter counts in
order, code sizes before and after the simplicity filter, how many items copy a seed: seed_echo.py). Tests:
tests/test_curation_filters.py, tests/test_decontamination.py, tests/test_simplicity.py, tests/test_seed_echo.py.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from protege.config import CurateConfig
from protege.errors import ConfigError
from protege.store import StageDir, atomic_write_json, atomic_write_text
from protege.synth.filters import dedup
from protege.synth.filters.decontam import decontaminate, protected_strings
from protege.synth.filters.schema import SchemaCheck, curated_row
from protege.synth.filters.simplicity import simplest_solutions
from protege.synth.seed_echo import seed_echo
from protege.tasks.text import natural_key
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec

Drops = dict[int, tuple[str, dict]]


@dataclass
class Curation:
    kept: list[dict] = field(default_factory=list)  # curated rows
    dropped: list[dict] = field(default_factory=list)  # generated records with dropped_by, reason, detail
    filters: dict = field(default_factory=dict)  # filter -> {input, dropped, reasons, seconds} or {skipped}
    code_stats: Optional[dict] = None  # simplicity filter: solution sizes before and after


def check_config(spec: TaskSpec, cfg: CurateConfig) -> None:
    """Problems that would only show after generation: call before running anything."""
    from protege.tasks.spec import load_task

    for other in cfg.decontaminate_against:
        load_task(other)  # an unknown task is a ConfigError naming the built-ins, before any work
    if kind_of(spec).EXECUTES_CODE and not cfg.allow_code_execution:
        raise ConfigError("run config", [
            f"curate.allow_code_execution: task {spec.name!r} is a code task, and curation runs every generated "
            "solution against its tests in the sandbox to keep only passing ones; set "
            "curate.allow_code_execution=true (YAML `curate: {allow_code_execution: true}`, or the override "
            "curate.allow_code_execution=true) once you accept running model-generated code on this machine"])


def curate(spec: TaskSpec, cfg: CurateConfig, generated: list[dict], test: list[Example] = (),
           validation: list[Example] = (), encode: Optional[Callable[[list[str]], np.ndarray]] = None) -> Curation:
    check_config(spec, cfg)
    encode = _memo(encode) if encode else _default_encoder(cfg)
    items = sorted(generated, key=lambda r: natural_key(r.get("id")))
    out = Curation()

    def apply(name: str, run: Callable[[list[dict]], Drops], skip: Optional[str] = None) -> None:
        nonlocal items
        if skip:
            out.filters[name] = {"skipped": skip}
            return
        start = time.perf_counter()
        drops = run(items) if items else {}
        for pos, (reason, detail) in drops.items():
            out.dropped.append({**items[pos], "dropped_by": name, "reason": reason, "detail": detail})
        out.filters[name] = {"input": len(items), "dropped": len(drops),
                             "reasons": dict(Counter(reason for reason, _ in drops.values())),
                             "seconds": round(time.perf_counter() - start, 3)}
        items = [r for pos, r in enumerate(items) if pos not in drops]

    schema = SchemaCheck(spec, cfg)
    apply("schema", lambda recs: {pos: verdict for pos, verdict in enumerate(map(schema, recs)) if verdict})
    apply("exact_dedup", lambda recs: dedup.exact_duplicates(recs, spec.kind),
          skip=None if cfg.dedup else "curate.dedup is false")
    apply("decontaminate", lambda recs: _decontaminate(spec, cfg, recs, test, validation, encode),
          skip=None if cfg.decontaminate else "curate.decontaminate is false")
    not_code = None if kind_of(spec).EXECUTES_CODE else f"only for code tasks; this one is {spec.kind}"
    apply("execution", lambda recs: _execution(spec, cfg, recs), skip=not_code)

    def simplicity(recs: list[dict]) -> Drops:
        drops, out.code_stats = simplest_solutions(recs, cfg)
        return drops

    apply("simplicity", simplicity, skip=not_code)
    apply("near_dedup", lambda recs: dedup.near_duplicates(recs, cfg.near_dup_jaccard, cfg.shingle_words,
                                                           cfg.minhash_perms, cfg.lsh_bands),
          skip=None if cfg.near_dup_jaccard is not None else "curate.near_dup_jaccard is null")
    apply("near_dedup_embedding", lambda recs: dedup.embedding_duplicates(recs, cfg.near_dup_cosine, encode),
          skip=None if cfg.near_dup_cosine is not None else "curate.near_dup_cosine is null")
    out.kept = [curated_row(r) for r in items]
    out.dropped.sort(key=lambda r: natural_key(r.get("id")))
    return out


def run_curate(spec: TaskSpec, cfg: CurateConfig, stage: StageDir, generated: list[dict]) -> dict:
    from protege.evaluate.test_access import LOG_NAME, read_test_set

    from protege.tasks.spec import load_task

    check_config(spec, cfg)
    test = read_test_set(spec, stage / LOG_NAME, stage, "decontamination", who="curate") if cfg.decontaminate else []
    for other in cfg.decontaminate_against if cfg.decontaminate else []:
        test += read_test_set(load_task(other), stage / LOG_NAME, stage, "decontamination", who="curate")
    validation = spec.validation_examples() if cfg.decontaminate else []
    result = curate(spec, cfg, generated, test, validation)
    atomic_write_text(stage / "data" / "train.jsonl", "".join(json.dumps(r) + "\n" for r in result.kept))
    atomic_write_text(stage / "drops.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in result.dropped))
    reads = 1 + len(cfg.decontaminate_against) if cfg.decontaminate else 0  # each a line of the access log
    summary = {"input": len(generated), "kept": len(result.kept), "test_reads": reads,
               "dropped": {reason: n for f in result.filters.values() for reason, n in f.get("reasons", {}).items()},
               "filters": result.filters}
    if kind_of(spec).LABELLED:
        summary["kept_per_label"] = dict(Counter(r["label"] for r in result.kept))
    if result.code_stats is not None:
        summary["code_stats"] = result.code_stats
    if echo := seed_echo(spec, generated):
        summary["seed_echo"] = echo
        if "notice" in echo:
            summary["notices"] = [echo["notice"]]
    atomic_write_json(stage / "curation.json", {**summary, "config": cfg.model_dump()})
    return summary


def _decontaminate(spec, cfg, recs, test, validation, encode) -> Drops:
    protected = protected_strings(spec.kind, list(test), list(validation))
    return decontaminate(recs, protected, spec.kind, cfg.contam_ngram, cfg.contam_overlap, cfg.contam_common_max,
                         cfg.contam_cosine, encode)


def _execution(spec: TaskSpec, cfg: CurateConfig, recs: list[dict]) -> Drops:
    from protege.synth.filters.execution import failing_solutions

    return failing_solutions(recs, cfg.exec_timeout_s, cfg.allow_code_execution, packages=spec.packages)


def _default_encoder(cfg: CurateConfig) -> Callable[[list[str]], np.ndarray]:
    """The bundled MiniLM, loaded on first use only (no filter that needs it may be switched on)."""
    def encode(texts: list[str]) -> np.ndarray:
        from protege.synth.filters.embed import EncoderMissing, encode as minilm

        try:
            return minilm(texts)
        except EncoderMissing as e:
            fields = [f"curate.{name}" for name in ("contam_cosine", "near_dup_cosine")
                      if getattr(cfg, name) is not None]
            raise ConfigError("run config", [f"{' and '.join(fields)}: {e}; or set {' and '.join(fields)} to "
                                             "null to curate without embeddings"]) from None

    return _memo(encode)


def _memo(encode: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """Encode each distinct text once per curation (decontamination and near-dups embed the same items)."""
    cache: dict[str, np.ndarray] = {}

    def cached(texts: list[str]) -> np.ndarray:
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            cache.update(zip(todo, encode(todo)))
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)

    return cached

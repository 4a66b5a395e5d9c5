"""Generate stage: the teacher writes new examples from the seeds, appended to samples.jsonl as batches finish.

    protege generate CONFIG.yaml            # runs the teacher gate, then generation (resumable)

Every request has a deterministic id (protege.synth.plan), so a killed run (kill -9 included) resumes by asking
only the ids not yet in the file: no duplicates, no finished work lost. Output the teacher mangles is kept
with its raw text, `ok: false` and the reason, and counted; it never stops the run. An HTTP teacher with a
budget (cost.budget / cost.token_budget) stops cleanly when it is spent: finished records are saved and the
stage stays open, so raising the budget and rerunning continues where it stopped.
"""
from __future__ import annotations

from collections import Counter

from protege.config import GenerateConfig
from protege.models.base import GenerationConfig
from protege.models.openai_http import BudgetExhausted, EndpointError
from protege.store import SAMPLES, JsonlLog, StageDir, text_hash
from protege.synth.plan import max_new_tokens, planned_requests, stop_strings
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec


class BudgetReached(RuntimeError):
    """Generation stopped because the configured budget is spent; what finished is in samples.jsonl."""


def read_reply(spec: TaskSpec, raw: str) -> tuple[dict | None, str | None]:
    """Example fields from one teacher reply, or (None, why it is unusable)."""
    return kind_of(spec).read_generated(spec, raw)


def make_record(spec: TaskSpec, request: dict, out, teacher: str) -> dict:
    fields, error = read_reply(spec, out.text)
    label = request["conditioning"]["label"]
    record = {"id": request["id"], **(fields or {"text": None})}
    if label is not None:
        record["label"] = label
    return {**record, "ok": fields is not None, "error": error, "raw": out.text, "seed_ids": request["seed_ids"],
            "conditioning": request["conditioning"], "teacher": teacher, "tokens_in": out.tokens_in,
            "tokens_out": out.tokens_out}


def run_prompts_from(spec: TaskSpec, cfg: GenerateConfig, stage: StageDir) -> dict:
    """generate.prompts_from: the items are human-written rows of a data file (the first num_examples), recorded
    as the teacher's would be, so the answers stage, curation and training treat them alike."""
    from protege.tasks.loaders import load_examples

    items = load_examples(spec, cfg.prompts_from, "prompts")[: cfg.num_examples]
    source = cfg.prompts_from.path
    log = JsonlLog(stage / SAMPLES)
    done = log.ids()
    log.append([{"id": item.id, **item.model_dump(exclude={"id"}, exclude_none=True), "ok": True, "error": None,
                 "raw": None, "seed_ids": [], "conditioning": {"prompts_from": source}, "teacher": None,
                 "tokens_in": 0, "tokens_out": 0} for item in items if item.id not in done])
    return {**summarize_generation(log.read()), "prompts_from": source}


def run_generate(spec: TaskSpec, cfg: GenerateConfig, stage: StageDir, lm, progress: bool = True) -> dict:
    log = JsonlLog(stage / SAMPLES)
    done = log.ids()
    todo = [r for r in planned_requests(spec, cfg) if r["id"] not in done]
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"generate ({lm.name})", disable=not progress, unit="example")
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        try:
            outs = lm.generate([r["prompt"] for r in batch], decoding_config(spec, cfg, batch[0]["id"]))
        except (BudgetExhausted, EndpointError) as e:
            # Keep what finished before the endpoint stopped answering or the money ran out.
            log.append([make_record(spec, r, o, lm.name) for r, o in zip(batch, e.partial or []) if o is not None])
            bar.close()
            if isinstance(e, EndpointError):
                raise
            raise BudgetReached(f"{e}; {len(log.ids())} of {cfg.num_examples} examples are saved in {log.path}; "
                                "raise cost.budget (or cost.token_budget) and rerun to continue") from None
        log.append([make_record(spec, r, o, lm.name) for r, o in zip(batch, outs)])
        bar.update(len(batch))
    bar.close()
    return summarize_generation(log.read())


def summarize_generation(records: list[dict]) -> dict:
    summary = {"records": len(records), "malformed": sum(not r["ok"] for r in records),
               "malformed_reasons": dict(Counter(r.get("error") for r in records if not r["ok"])),
               "tokens_in": sum(r["tokens_in"] for r in records),
               "tokens_out": sum(r["tokens_out"] for r in records)}
    if any("label" in r for r in records):
        summary["per_label"] = dict(Counter(r.get("label") for r in records))
    return summary


def decoding_config(spec: TaskSpec, cfg: GenerateConfig, first_id: str) -> GenerationConfig:
    """Decoding settings of the batch starting with request `first_id`: seeded from that id, so a resumed run
    samples exactly as an unbroken one would (and a dry-run calibration reproduces the first batch)."""
    return GenerationConfig(max_new_tokens=max_new_tokens(spec, cfg), temperature=cfg.temperature,
                            top_p=cfg.top_p, seed=cfg.seed + hash_id(first_id), stop=stop_strings(spec))


def hash_id(text: str) -> int:
    """A stable 32-bit integer from a request id (the first 8 hex digits of its sha256)."""
    return int(text_hash(text)[:8], 16)

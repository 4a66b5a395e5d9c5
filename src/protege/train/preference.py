"""Preference pairs from teacher outcomes: sample the teacher several times per training prompt, judge each
sample against the item, and pair a correct answer (chosen) with a wrong one (rejected), as in DPO from
outcome feedback (arXiv:2410.18890).

    log = JsonlLog(stage / "preferences.jsonl")
    summary = build_preferences(spec, teacher, train_items, log=log, samples_per_prompt=4, temperature=0.8)
    pairs = pair_rows(log.read())      # [{"id", "prompt", "chosen", "rejected"}] for run_dpo / TRL's DPOTrainer

Items come from the curated training rows, never the test set (refused by id and by content). The log holds one
record per item (its samples, their scores and its pairs), appended chunk by chunk; a rerun skips items already
in it. Sampling is seeded from the chunk's first item id and the sample index, so a rerun draws what an unbroken
run would (unless a kill split a chunk's lines, rare: the chunk's remaining items are then batched differently).

Pairs are TRL's conversational preference format, so any student's chat template renders them:
    {"id": "<item id>/0", "prompt": [{"role": "user", "content": ...}],
     "chosen": [{"role": "assistant", "content": <correct sample>}],
     "rejected": [{"role": "assistant", "content": <wrong sample>}]}
The prompt is the zero-shot task prompt the student is trained and evaluated with (`kind.prompt`), whatever shots
the teacher was shown. A sample is correct when its judge score (train/judge.py) reaches `correct_at` (1.0: full
marks; QA F1 and extraction slot F1 give partial credit, which counts as wrong). Chosen samples are taken best
first and rejected ones worst first, distinct texts only; a prompt whose samples are all correct or all wrong
gives no pair and is counted.
"""
from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from protege.models.base import GenerationConfig, prompt_text
from protege.store import JsonlLog, text_hash
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec
from protege.train.judge import judge


def build_preferences(spec: TaskSpec, teacher_lm, items: Sequence[Example | dict], *, log: JsonlLog,
                      samples_per_prompt: int = 4, temperature: float = 0.8, pairs_per_prompt: int = 1,
                      correct_at: float = 1.0, seed: int = 0, shots: Sequence[Example] = (),
                      max_new_tokens: int | None = None, chunk: int = 8, allow_code_execution: bool = False,
                      progress: bool = True) -> dict:
    """Sample, judge and pair every item not yet in `log`; returns the summary over all of `items`."""
    from protege.evaluate.test_access import ensure_not_test
    from protege.synth.generate import hash_id

    if samples_per_prompt < 2:
        raise ValueError(f"samples_per_prompt={samples_per_prompt}: a pair needs at least 2 samples per prompt")
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: greedy decoding gives the same answer every time, so no "
                         "pair could form; use a sampling temperature such as 0.8")
    if pairs_per_prompt < 1:
        raise ValueError(f"pairs_per_prompt={pairs_per_prompt}: must be at least 1")
    items = [it if isinstance(it, Example) else _example(it) for it in items]
    if any(it.id is None for it in items):
        raise ValueError("build_preferences: every item needs an id (the log is keyed by it)")
    ensure_not_test(spec, items, "preference prompts")
    if kind_of(spec).EXECUTES_CODE and not allow_code_execution:
        from protege.scoring.sandbox import CodeExecutionNotAllowed

        raise CodeExecutionNotAllowed()  # before any sampling, not after the teacher's time is spent
    kind = kind_of(spec)
    done = log.ids()
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]  # fixed boundaries: resume draws alike
    bar = tqdm(total=len(items), initial=sum(it.id in done for it in items), desc=f"preferences ({teacher_lm.name})",
               disable=not progress, unit="prompt")
    for block in chunks:
        todo = [it for it in block if it.id not in done]
        if not todo:
            continue
        prompts = [kind.prompt(spec, it, shots) for it in todo]
        samples: list[list] = [[] for _ in todo]
        for k in range(samples_per_prompt):
            # One seed per (chunk, sample index): samples differ across k even for a backend that honours seeds
            # per request (an HTTP teacher), and do not depend on what ran before.
            config = GenerationConfig(max_new_tokens=max_new_tokens or kind.MAX_NEW_TOKENS, temperature=temperature,
                                      seed=seed + hash_id(f"{block[0].id}/{k}"), stop=list(kind.STOP))
            for row, gen in zip(samples, teacher_lm.generate(prompts, config)):
                row.append(gen)
        flat_items = [it for it, row in zip(todo, samples) for _ in row]
        scores = judge(spec, flat_items, [g.text for row in samples for g in row], allow_code_execution)
        records = []
        for n, (item, prompt, row) in enumerate(zip(todo, prompts, samples)):
            row_scores = scores[n * samples_per_prompt : (n + 1) * samples_per_prompt]
            records.append(_record(spec, teacher_lm, item, prompt, row, row_scores, pairs_per_prompt, correct_at))
        log.append(records)
        bar.update(len(todo))
    bar.close()
    wanted = {it.id for it in items}
    return summarize_preferences([r for r in log.read() if r["id"] in wanted])


def pair_rows(records: Sequence[dict]) -> list[dict]:
    """TRL conversational preference rows from the log's records, one per pair, ids `<item id>/<n>`."""
    rows = []
    for rec in records:
        for n, pair in enumerate(rec["pairs"]):
            rows.append({"id": f"{rec['id']}/{n}", "prompt": rec["prompt"],
                         "chosen": [{"role": "assistant", "content": pair["chosen"]}],
                         "rejected": [{"role": "assistant", "content": pair["rejected"]}]})
    return rows


def summarize_preferences(records: Sequence[dict]) -> dict:
    scores = [s["score"] for r in records for s in r["samples"]]
    return {
        "prompts": len(records),
        "samples": len(scores),
        "teacher_accuracy": sum(s["correct"] for r in records for s in r["samples"]) / max(1, len(scores)),
        "teacher_mean_score": sum(scores) / max(1, len(scores)),
        "pairs": sum(len(r["pairs"]) for r in records),
        "prompts_with_pairs": sum(bool(r["pairs"]) for r in records),
        "all_correct": sum(all(s["correct"] for s in r["samples"]) for r in records),
        "all_wrong": sum(not any(s["correct"] for s in r["samples"]) for r in records),
        "tokens_in": sum(s["tokens_in"] for r in records for s in r["samples"]),
        "tokens_out": sum(s["tokens_out"] for r in records for s in r["samples"]),
    }


def make_pairs(texts: Sequence[str], scores: Sequence[float], pairs_per_prompt: int,
               correct_at: float = 1.0) -> list[dict]:
    """Up to `pairs_per_prompt` distinct (chosen, rejected) pairs: the best correct answers against the worst
    wrong ones, cycling through the shorter side; none when every sample is correct or every one wrong."""
    correct = _distinct(sorted((i for i, s in enumerate(scores) if s >= correct_at), key=lambda i: -scores[i]), texts)
    wrong = _distinct(sorted((i for i, s in enumerate(scores) if s < correct_at), key=lambda i: scores[i]), texts)
    if not correct or not wrong:
        return []
    pairs = []
    for j in range(min(pairs_per_prompt, max(len(correct), len(wrong)))):  # each j a distinct pair
        c, w = correct[j % len(correct)], wrong[j % len(wrong)]
        pairs.append({"chosen": texts[c], "rejected": texts[w], "chosen_score": scores[c], "rejected_score": scores[w]})
    return pairs


def _distinct(order: list[int], texts: Sequence[str]) -> list[int]:
    seen, kept = set(), []
    for i in order:
        if texts[i] not in seen:
            seen.add(texts[i])
            kept.append(i)
    return kept


def _record(spec: TaskSpec, lm, item: Example, teacher_prompt, gens: list, scores: list[float],
            pairs_per_prompt: int, correct_at: float) -> dict:
    texts = [g.text for g in gens]
    return {
        "id": item.id,
        "prompt": kind_of(spec).prompt(spec, item),  # the student's zero-shot prompt, not the teacher's shots
        "teacher": lm.name,
        "teacher_prompt_hash": text_hash(prompt_text(lm, teacher_prompt)),
        "samples": [{"text": g.text, "score": s, "correct": s >= correct_at, "tokens_in": g.tokens_in,
                     "tokens_out": g.tokens_out} for g, s in zip(gens, scores)],
        "pairs": make_pairs(texts, scores, pairs_per_prompt, correct_at),
    }


def _example(row: dict) -> Example:
    """A curated training row (it may carry generation bookkeeping beside the Example fields)."""
    return Example(**{k: v for k, v in row.items() if k in Example.model_fields})

"""Answer modes of the generate stage: after the teacher writes whole items, their answers are written again.

    generate.mode: items          the teacher's items as they are (default)
    generate.mode: answers        the teacher alone answers each item's prompt (the kind's own prompt, as training
                                  and evaluation render it): the teacher-only baseline of the cooperative mode
    generate.mode: cooperative    teacher and student answer it together (protege/cooperative): the student
                                  writes the style tokens, the teacher the content (generate.cooperative)

Both answer modes decode with generate.cooperative's teacher sampling and max_new_tokens, so the two datasets
differ only in who writes. Code and math only: their answers are reasoning or programs; a code answer's
program becomes the item's reference (curation still runs it against the item's tests), a math answer becomes
the worked reference and must reach the item's final number. generate.cooperative.answer_instruction adds a
sentence to every prompt (both modes); a code answer's text before its code block becomes the item's rationale,
trained on before the code. The answers stage sits between generate and curate,
so both modes share the teacher's items (runs/<task>/answers-<key>/answers.jsonl, append-only and keyed by item
id, so a killed run resumes); cooperative records keep which model wrote each span.
"""
from __future__ import annotations

from tqdm.auto import tqdm

from protege.config import RunConfig
from protege.models.base import GenerationConfig
from protege.store import ANSWERS, SAMPLES, JsonlLog, StageDir
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec

def check_answer_mode(spec: TaskSpec, cfg: RunConfig) -> list[str]:
    if cfg.generate.mode != "items" and not kind_of(spec).REWRITES_ANSWERS:
        return [f"generate.mode: {cfg.generate.mode!r} rewrites reasoning and code answers, and task "
                f"{spec.name!r} is {spec.kind}; use generate.mode=items, or a code or math task"]
    if cfg.generate.mode == "items" and cfg.generate.answers_teacher:
        return ["generate.answers_teacher: the teacher's items keep their own answers in generate.mode=items; set "
                "generate.mode=answers (or cooperative) for another teacher to answer them, or drop answers_teacher"]
    return []


def answer_record(spec: TaskSpec, item: dict, text: str) -> dict:
    """The item with its reference rewritten from `text`, or ok false with the reason."""
    return kind_of(spec).answer_record(spec, item, text)


def with_instruction(messages: list[dict], instruction: str | None) -> list[dict]:
    """The chat with `instruction` added to its last user message (unchanged when None)."""
    if not instruction:
        return messages
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return [{**m, "content": f"{m['content']}\n\n{instruction.strip()}"} if i == last else m
            for i, m in enumerate(messages)]


def answer_prompt(spec: TaskSpec, item: dict, instruction: str | None) -> list[dict]:
    """The chat both answer modes send for one generated item: the kind's prompt, plus the answer instruction."""
    messages = kind_of(spec).prompt(spec, Example(**{k: v for k, v in item.items() if k in Example.model_fields}))
    return with_instruction(messages, instruction)


def run_answers(spec: TaskSpec, cfg: RunConfig, generate: StageDir, stage: StageDir, teacher, student=None,
                progress: bool = True) -> dict:
    """Write the answers stage's answers.jsonl for every well-formed item of the generate stage not answered
    yet; returns counts."""
    from protege.cooperative import cooperate_batch, load_predictor

    coop, mode = cfg.generate.cooperative, cfg.generate.mode
    log = JsonlLog(stage / ANSWERS)
    done = log.ids()
    items = [r for r in JsonlLog(generate / SAMPLES).read() if r["ok"] and r["id"] not in done]
    predictor = load_predictor(coop.predictor, coop.handoff) if mode == "cooperative" else None
    decoding = GenerationConfig(max_new_tokens=coop.max_new_tokens, temperature=coop.teacher_temperature,
                                top_p=coop.teacher_top_p, seed=coop.seed)
    def prompt_of(item: dict):
        return answer_prompt(spec, item, coop.answer_instruction)

    bar = tqdm(total=len(items), desc=f"answers ({mode})", disable=not progress, unit="item")
    # A chunk of prompts per batch, appended as the chunk finishes: the teacher alone decodes them as one batch;
    # cooperatively, each side's turns of the chunk's answers decode as one batch (cooperative/batched.py).
    chunk = cfg.generate.batch_size
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        if mode == "cooperative":
            samples = cooperate_batch([prompt_of(item) for item in part], teacher, student, coop, predictor)
            texts = [sample.text for sample in samples]
            extras = [{"spans": sample.spans, "tokens": sample.tokens, "chars": sample.chars, "turns": sample.turns,
                       "stop": sample.stop} for sample in samples]
        else:
            gens = teacher.generate([prompt_of(item) for item in part], decoding)
            texts, extras = [g.text for g in gens], [{"tokens": {"teacher": g.tokens_out}} for g in gens]
        log.append([{"id": item["id"], "mode": mode, "raw": text, **answer_record(spec, item, text), **extra}
                    for item, text, extra in zip(part, texts, extras)])
        bar.update(len(part))
    bar.close()
    records = log.read()
    return {"answered": len(records), "answers_ok": sum(r["ok"] for r in records),
            "answers_failed": sum(not r["ok"] for r in records)}


def merge_answers(generated: list[dict], answers: list[dict]) -> list[dict]:
    """Generated records with their answers applied: a failed or missing answer makes the record not ok."""
    by_id = {a["id"]: a for a in answers}
    merged = []
    for rec in generated:
        a = by_id.get(rec["id"])
        if not rec["ok"]:
            merged.append(rec)
        elif a is None or not a["ok"]:
            merged.append({**rec, "ok": False, "error": a["error"] if a else "no answer written"})
        else:
            merged.append({**rec, "reference": a["reference"], "item_reference": rec.get("reference"),
                           "answer_mode": a["mode"], **({"rationale": a["rationale"]} if a.get("rationale") else {})})
    return merged

"""train.method=kd with a teacher of another tokenizer: each row is tokenised by both models in their own chat
templates, the answer positions are aligned by character offsets, and KD is taken on the shared tokens
(train/cross_tokenizer.py). The teacher's logits are computed online (the top-k cache is in one vocabulary).

    protege train my-run.yaml --method kd train.kd.teacher=bundled:qwen2.5-coder-1.5b-instruct   # SmolLM2 student
"""
from __future__ import annotations

import torch

from protege.config import RunConfig
from protege.store import StageDir
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec
from protege.train.cross_tokenizer import (UnsupportedTokenizers, aligned_kd_loss, aligned_positions, answer_tokens,
                                           token_ends, vocabulary_map)
from protege.train.kd_loss import TokenizerMismatch
from protege.train.loop import collate, train_lora
from protege.train.shared_prefix import body_hidden


def pair_row(student, teacher, prompt, answer: str, finished: bool, max_len: int,
             align: str = "span") -> tuple[dict, dict]:
    """One row as the student's example (prompt + answer in its template, labels on the answer) and the
    teacher's ids with the aligned (student position, teacher position) pairs, both positions predicting the same
    answer character (align="span": the same token text). `finished`: the answer ends its turn (each model's
    end-of-turn text is appended)."""
    s_answer = answer + (student.end_of_turn(prompt) if finished else "")
    t_answer = answer + (teacher.end_of_turn(prompt) if finished else "")
    sp, sa, s_starts = answer_tokens(student.tokenizer, student.render(prompt), s_answer)
    tp, ta, t_starts = answer_tokens(teacher.tokenizer, teacher.render(prompt), t_answer)
    s_cut, t_cut = max(0, len(sp) + len(sa) - max_len), max(0, len(tp) + len(ta) - max_len)
    ends = (token_ends(s_starts, len(answer)), token_ends(t_starts, len(answer))) if align == "span" else None
    pairs = [(len(sp) + k - 1 - s_cut, len(tp) + m - 1 - t_cut)
             for k, m in aligned_positions(s_starts, t_starts, *(ends or ()))]
    return ({"input_ids": (sp + sa)[-max_len:], "labels": ([-100] * len(sp) + sa)[-max_len:]},
            {"input_ids": (tp + ta)[-max_len:], "pairs": [(a, b) for a, b in pairs if a >= 0 and b >= 0]})


def paired_examples(spec: TaskSpec, rows: list[dict], student, teacher, max_len: int,
                    align: str = "span") -> tuple[list, list]:
    """pair_row of every row's prompt and target (the teacher's text, as SFT trains on it)."""
    kind = kind_of(spec)
    students, teachers = [], []
    for row in rows:
        example = Example(**{k: v for k, v in row.items() if k in Example.model_fields})
        prompt = kind.prompt(spec, example)
        s, t = pair_row(student, teacher, prompt, kind.target(spec, example), True, max_len, align)
        students.append(s)
        teachers.append(t)
    return students, teachers


def aligned_loss(model, teacher, batch: dict, paired: list[dict], vmap, alpha: float, temperature: float,
                 kind: str, beta: float, chunk_tokens: int):
    """aligned_kd_loss on a collated student batch and its rows' teacher entries (pair_row), the teacher's
    logits computed here without gradient."""
    inner = model.get_base_model()
    hidden = body_hidden(inner, batch["input_ids"], batch["attention_mask"])
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    flat = torch.full(keep.shape, -1, dtype=torch.long, device=keep.device)
    flat[keep] = torch.arange(int(keep.sum()), device=keep.device)
    pad = teacher.tokenizer.pad_token_id if teacher.tokenizer.pad_token_id is not None else 0
    t_batch = collate([{"input_ids": p["input_ids"], "labels": p["input_ids"]} for p in paired], pad)
    with torch.no_grad():
        logits = teacher.model(input_ids=t_batch["input_ids"].to(teacher.device),
                               attention_mask=t_batch["attention_mask"].to(teacher.device)).logits
    rows, t_rows = [], []
    for b, entry in enumerate(paired):
        for s_pos, t_pos in entry["pairs"]:
            if s_pos < keep.shape[1] and flat[b, s_pos] >= 0:
                rows.append(int(flat[b, s_pos]))
                t_rows.append(logits[b, t_pos])
    aligned = torch.tensor(rows, dtype=torch.long, device=keep.device)
    t_logits = torch.stack(t_rows) if t_rows else logits.new_zeros((0, logits.shape[-1]))
    return aligned_kd_loss(hidden[:, :-1][keep], inner.lm_head, targets[keep], aligned, t_logits, vmap, alpha,
                           temperature, kind, beta, chunk_tokens)


def load_aligned_teacher(name: str, student, option: str):
    """The teacher and the student-teacher vocabulary map; a pair that cannot be aligned is refused."""
    from protege.models.resolve import load_lm

    if name.startswith("openai:"):
        raise ValueError(f"{option}: {name} is an HTTP endpoint; logit distillation needs its logits here")
    teacher = load_lm(name)
    try:
        for lm in (student, teacher):  # answer_tokens needs character offsets: check here, once, for both uses
            if not getattr(lm.tokenizer, "is_fast", False):
                raise UnsupportedTokenizers(f"{lm.name}'s {type(lm.tokenizer).__name__} is not a fast tokenizer: "
                                            "no character offsets")
        return teacher, vocabulary_map(student.tokenizer, teacher.tokenizer)
    except UnsupportedTokenizers as e:
        raise TokenizerMismatch(f"{option}: student {student.name} and teacher {name} cannot be aligned ({e}); "
                                "use train.method=sft on the teacher's text instead") from None


def run_cross_kd(spec: TaskSpec, cfg: RunConfig, stage: StageDir, student, rows: list[dict],
                 progress: bool = True) -> dict:
    kd = cfg.train.kd
    name = cfg.teacher_for("kd")
    teacher, vmap = load_aligned_teacher(name, student, "train.kd.cross_tokenizer")
    examples, paired = paired_examples(spec, rows, student, teacher, cfg.train.max_seq_len, kd.align)

    def loss_fn(model, batch, indices):
        loss, parts = aligned_loss(model, teacher, batch, [paired[i] for i in indices], vmap, kd.alpha,
                                   kd.temperature, kd.divergence, kd.beta, kd.chunk_tokens)
        return loss, {k: v for k, v in parts.items() if v == v}

    summary = train_lora(cfg.train, stage, student, examples, loss_fn, desc=f"train LoRA KD across tokenizers "
                         f"a={kd.alpha}", progress=progress)
    answer_tokens_total = sum(sum(1 for x in e["labels"] if x != -100) for e in examples)
    return {"method": "kd", "teacher": name, "alpha": kd.alpha, "temperature": kd.temperature,
            "divergence": kd.divergence, "signal": "online", "cross_tokenizer": True, "align": kd.align,
            "shared_tokens": len(vmap.student_ids), "student_vocabulary": vmap.student_size,
            "teacher_vocabulary": vmap.teacher_size,
            "aligned_positions": sum(len(p["pairs"]) for p in paired) / max(1, answer_tokens_total), **summary}

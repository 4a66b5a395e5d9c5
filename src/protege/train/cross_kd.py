"""train.method=kd with a teacher of another tokenizer: each row is tokenised by both models in their own chat
templates, the answer positions are aligned by character offsets, and KD is taken on the shared tokens
(train/cross_tokenizer.py). The teacher reads every row once, before training, and its full-vocabulary
log-probabilities at the aligned positions, folded onto the shared tokens, stay in memory for every epoch (the
top-k disk cache is in one vocabulary); the teacher then leaves memory. Each batch of that pass is also saved in the
stage (teacher-targets/, removed when training ends), so a stopped stage resumes without the teacher's pass.

    protege train my-run.yaml --method kd train.kd.teacher=bundled:qwen2.5-coder-1.5b-instruct   # SmolLM2 student
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from protege.config import RunConfig
from protege.models.resolve import release_teacher
from protege.store import StageDir, atomic_torch_save, content_key
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec
from protege.train.cross_tokenizer import (UnsupportedTokenizers, aligned_kd_loss, aligned_positions, answer_tokens,
                                           teacher_side, token_ends, vocabulary_map)
from protege.train.kd_loss import TokenizerMismatch
from protege.train.distributed import total
from protege.train.loop import SHARE_OF_MEAN, collate, train_lora
from protege.train.shared_prefix import body_hidden, logits_picker


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


def teacher_targets(teacher, paired: list[dict], vmap, temperature: float, chunk_tokens: int = 256) -> list:
    """Per row of `paired` (pair_row's teacher entries), the teacher's folded log-probabilities at its aligned
    positions ([pairs, shared tokens (+1)], teacher_side), without gradient. The teacher's body runs once over
    the batch, its common opening once (train/shared_prefix.py), and its output layer only at the aligned
    positions. Measured on Qwen2.5-Coder-1.5B, 8 MBPP rows of 260 tokens, fp32, 2 AVX2 cores: 103-109 s for the
    full logits, 88 s for the body alone, 76 s with the common opening run once."""
    model = teacher.model
    pad = teacher.tokenizer.pad_token_id if teacher.tokenizer.pad_token_id is not None else 0
    batch = collate([{"input_ids": p["input_ids"], "labels": p["input_ids"]} for p in paired], pad)
    ids, mask = batch["input_ids"].to(teacher.device), batch["attention_mask"].to(teacher.device)
    pick = logits_picker(model, ids, mask, chunk_tokens)
    with torch.no_grad():
        out = []
        for b, entry in enumerate(paired):
            pos = torch.tensor([t for _, t in entry["pairs"]], dtype=torch.long, device=ids.device)
            out.append(teacher_side(pick((b, pos)), vmap, temperature))
    return out


def pairs_in_batch(batch: dict, paired: list[dict]) -> tuple[list[int], list[list[int]]]:
    """Where the rows' pairs fall among the collated batch's answer positions (flattened, as aligned_kd_loss
    numbers them), and per row which of its pairs those are (a pair past the batch's width or off the answer is
    left out)."""
    keep = batch["labels"][:, 1:] != -100
    flat = torch.full(keep.shape, -1, dtype=torch.long)
    flat[keep.cpu()] = torch.arange(int(keep.sum()))
    rows, used = [], []
    for b, entry in enumerate(paired):
        mine = [j for j, (s_pos, _) in enumerate(entry["pairs"]) if s_pos < keep.shape[1] and flat[b, s_pos] >= 0]
        rows += [int(flat[b, entry["pairs"][j][0]]) for j in mine]
        used.append(mine)
    return rows, used


def aligned_loss(model, teacher_rows: list, batch: dict, paired: list[dict], vmap, alpha: float,
                 temperature: float, kind: str, beta: float, chunk_tokens: int, over_processes: bool = False):
    """aligned_kd_loss on a collated student batch, its rows' teacher entries (pair_row) and the teacher's
    targets at their pairs (teacher_targets, one tensor per row, in the entries' pair order). `over_processes`:
    both means divide by their counts summed over every process (train/loop.py SHARE_OF_MEAN)."""
    inner = model.get_base_model()
    hidden = body_hidden(inner, batch["input_ids"], batch["attention_mask"])
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    rows, used = pairs_in_batch(batch, paired)
    aligned = torch.tensor(rows, dtype=torch.long, device=keep.device)
    t_logp = torch.cat([t[u] for t, u in zip(teacher_rows, used)]).to(keep.device)
    means_over = (total(int(keep.sum())), total(len(rows))) if over_processes else None
    return aligned_kd_loss(hidden[:, :-1][keep], inner.lm_head, targets[keep], aligned, t_logp, vmap, alpha,
                           temperature, kind, beta, chunk_tokens, means_over)


def all_teacher_targets(teacher, paired: list[dict], vmap, temperature: float, batch_size: int,
                        progress: bool = True, folder: Path | None = None) -> list:
    """teacher_targets of every row, batch by batch (rows of similar length together), before training: the
    teacher reads each row once however many epochs follow, and leaves memory before the student trains. With
    `folder`, each batch's targets are saved there as they come (named by the batch's content) and a batch already
    there is read back instead of recomputed: a stopped stage does not redo the teacher's pass."""
    from tqdm.auto import tqdm

    order = sorted(range(len(paired)), key=lambda i: len(paired[i]["input_ids"]))
    out = [None] * len(paired)
    bar = tqdm(total=len(paired), desc=f"teacher logits at aligned positions ({teacher.name})", unit="row",
               disable=not progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        entries = [paired[i] for i in chunk]
        path = folder / f"{content_key([entries, vmap.teacher_size, temperature], 16)}.pt" if folder else None
        if path is not None and path.exists():
            rows = torch.load(path)
        else:
            rows = [t.cpu() for t in teacher_targets(teacher, entries, vmap, temperature)]  # kept on the host
            if path is not None:
                atomic_torch_save(rows, path)
        for i, t in zip(chunk, rows):
            out[i] = t
        bar.update(len(chunk))
    bar.close()
    return out


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
    if cfg.train.micro_batch_tokens is not None:
        raise ValueError(f"train.micro_batch_tokens: KD across tokenizers (student {student.name}, teacher {name}) "
                         "trains each step's batch at once; unset it and lower train.batch_size to bound memory")
    teacher, vmap = load_aligned_teacher(name, student, "train.kd.cross_tokenizer")
    examples, paired = paired_examples(spec, rows, student, teacher, cfg.train.max_seq_len, kd.align)
    began, saved = time.perf_counter(), stage.path / "teacher-targets"
    targets = all_teacher_targets(teacher, paired, vmap, kd.temperature, cfg.train.batch_size, progress, saved)
    teacher_seconds = time.perf_counter() - began
    teacher = None
    release_teacher(name, cfg.train.student)

    def loss_fn(model, batch, indices):  # two means over different positions, each over every process's count
        loss, parts = aligned_loss(model, [targets[i] for i in indices], batch, [paired[i] for i in indices],
                                   vmap, kd.alpha, kd.temperature, kd.divergence, kd.beta, kd.chunk_tokens,
                                   over_processes=True)
        return loss, {**{k: v for k, v in parts.items() if v == v}, SHARE_OF_MEAN: True}

    summary = train_lora(cfg.train, stage, student, examples, loss_fn, desc=f"train LoRA KD across tokenizers "
                         f"a={kd.alpha}", progress=progress)
    shutil.rmtree(saved, ignore_errors=True)  # the adapter is trained: the pass is not needed again
    answer_tokens_total = sum(sum(1 for x in e["labels"] if x != -100) for e in examples)
    return {"method": "kd", "teacher": name, "alpha": kd.alpha, "temperature": kd.temperature,
            "divergence": kd.divergence, "signal": "memory", "cross_tokenizer": True, "align": kd.align,
            "shared_tokens": len(vmap.student_ids), "student_vocabulary": vmap.student_size,
            "teacher_vocabulary": vmap.teacher_size,
            "aligned_positions": sum(len(p["pairs"]) for p in paired) / max(1, answer_tokens_total), **summary,
            # the wall time includes the teacher's pass, which the training loop's own clock does not
            "seconds": summary["seconds"] + teacher_seconds, "teacher_seconds": teacher_seconds}

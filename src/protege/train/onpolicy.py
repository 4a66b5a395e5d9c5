"""On-policy distillation (train.method=onpolicy): the teacher's distribution on the student's own samples.

    protege train my-run.yaml --method onpolicy train.onpolicy.beta=0.5 train.onpolicy.lambda=0

Generalised knowledge distillation (GKD; Agarwal et al. 2024, "On-Policy Distillation of Language Models"). At
each step, for the batch's prompts (the run's curated inputs, rendered as SFT renders them), either
- the student samples an answer (share 1 - lambda of the steps), or
- the teacher's own answer is used (share lambda: the curated row's target, the text SFT trains on);
then the teacher scores every answer token and the loss is divergence(student, teacher) per answer token,
averaged: beta 0 forward KL(teacher || student), beta 1 reverse KL(student || teacher), in between the generalised
JSD (train/kd_loss.py `divergence`). Sampling runs without gradient and the teacher's logits are constants, so
the gradient flows only through the student's log-probabilities of the sampled tokens' positions. With lambda 1
the method is offline KD on the teacher's text (train.method=kd, alpha 1, an online teacher), step for step.

Which steps sample is a pure function of the step's example indices, and sampling draws from torch's generator,
which the loop's checkpoints keep: a killed run resumes on the same curve. Compute is counted in token passes
as train/rl.py counts them (each token through one forward): the student's sampling (prompt + answer), the
teacher's scoring and the student's training forward (prompt + answer each); the run stops when the budget is
spent (train.onpolicy.budget_tokens / budget_seconds, or the passes SFT would spend when match_sft).

Memory: scoring and training run over the step's rows at once, unless train.onpolicy.micro_batch_tokens splits
them into micro-batches, each scored, trained and backpropagated in turn (train/micro_batch.py): the same step up
to float rounding, holding one micro-batch's activations and teacher logits.
"""
from __future__ import annotations

import random
import time

import torch

from protege.config import RunConfig
from protege.store import TRAIN_LOG, JsonlLog, StageDir
from protege.tasks.kinds import kind_of
from protege.tasks.spec import Example, TaskSpec
from protege.train.kd_loss import balanced_kd_loss, check_same_tokenizer, topk_teacher
from protege.train.distributed import total as total_over_processes
from protege.train.loop import AVERAGED_OVER, collate, train_lora
from protege.train.micro_batch import answer_tokens, backward_in_parts
from protege.train.shared_prefix import body_hidden, logits_picker
from protege.train.sft import build_examples


def divergence_kind(beta: float) -> str:
    return "forward_kl" if beta == 0 else "reverse_kl" if beta == 1 else "jsd"


def divergence_args(beta: float) -> tuple[str, float]:
    """(kind, beta) for kd_loss.divergence: the two ends are the KLs by name, where JSD's own beta is unused."""
    return divergence_kind(beta), beta if 0 < beta < 1 else 0.5


def uses_teacher_text(seed: int, indices: list[int], mix: float) -> bool:
    """Whether the step over these examples trains on the teacher's text (probability `mix`), decided by the
    indices alone so that a resumed run decides as the unbroken one did."""
    return random.Random(f"{seed}-onpolicy-{list(indices)}").random() < mix


def prompt_ids(example: dict) -> list[int]:
    """The prompt part of a `build_examples` example (the tokens whose label is -100)."""
    n = next((i for i, label in enumerate(example["labels"]) if label != -100), len(example["labels"]))
    return example["input_ids"][:n]


@torch.no_grad()
def sample_answers(model, prompts: list[list[int]], pad_id: int, eos_id: int | None, max_new_tokens: int,
                   temperature: float) -> list[list[int]]:
    """The student's answers to `prompts` (left-padded into one batch), each cut after its first end token."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if temperature > 0 \
        else {"do_sample": False}
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                         pad_token_id=pad_id, eos_token_id=eos_id, **sampling)
    model.train(was_training)
    answers = []
    for row in out[:, width:].tolist():
        if eos_id is not None and eos_id in row:
            row = row[: row.index(eos_id) + 1]
        answers.append(row)
    return answers


def distill_loss(model, teacher_model, batch: dict, beta: float, top_k: int | None, chunk_tokens: int):
    """divergence(student, teacher) over the answer tokens of `batch`; the teacher's logits are constants."""
    inner = model.get_base_model()
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    with torch.no_grad():
        # the teacher's output layer at the answer positions only (`keep` padded to [B, T]; session 37: its full
        # logits, copied by the pick, helped run a 24 GiB machine out of memory)
        answer = torch.nn.functional.pad(keep, (0, 1))
        signal = logits_picker(teacher_model, batch["input_ids"], batch["attention_mask"], chunk_tokens)(answer)
        if top_k is not None:
            signal = topk_teacher(signal, top_k, 1.0)
    hidden = body_hidden(inner, batch["input_ids"], batch["attention_mask"])
    loss, parts = balanced_kd_loss(hidden[:, :-1][keep], inner.lm_head, targets[keep], signal, 1.0, 1.0,
                                   *divergence_args(beta), chunk_tokens=chunk_tokens)
    return loss, parts


class Passes:
    """Token passes and seconds spent so far, carried on from the step log when a run resumes. The log is read at
    the first step (`resume`), after the training loop has cut it back to the checkpoint the run resumes from
    (loop.rewind_log), so steps a killed run logged after its last checkpoint are not counted twice."""

    def __init__(self, log: JsonlLog, budget_tokens: int | None, budget_seconds: float | None):
        self.log, self.began = log, None
        self.tokens, self.before = 0, 0.0
        self.budget_tokens, self.budget_seconds = budget_tokens, budget_seconds

    def resume(self) -> None:
        """Carry on from the log's last step (once; later calls do nothing)."""
        if self.began is None:
            last = (self.log.read() or [{}])[-1]
            self.tokens, self.before = int(last.get("passes", 0)), float(last.get("compute_seconds", 0.0))
            self.began = time.perf_counter()

    def seconds(self) -> float:
        return self.before + (time.perf_counter() - self.began if self.began is not None else 0.0)

    def stop(self) -> str | None:
        if self.budget_tokens is not None and self.tokens >= self.budget_tokens:
            return "tokens"
        if self.budget_seconds is not None and self.seconds() >= self.budget_seconds:
            return "seconds"
        return None


def run_onpolicy(spec: TaskSpec, cfg: RunConfig, stage: StageDir, student, rows: list[dict],
                 progress: bool = True) -> dict:
    from protege.models.resolve import load_lm
    from protege.train.kd import same_vocabulary
    from protege.train.rl import sft_tokens

    o = cfg.train.onpolicy
    teacher_name = cfg.teacher_for("onpolicy")
    if teacher_name.startswith("openai:"):
        raise ValueError(f"train.onpolicy.teacher: {teacher_name} is an HTTP endpoint, and on-policy distillation "
                         "needs the teacher's logits on the student's samples here; set train.onpolicy.teacher to a "
                         "local model with the student's vocabulary")
    cross = o.cross_tokenizer == "align" or (o.cross_tokenizer == "auto" and not same_vocabulary(teacher_name, student))
    if cross:
        from protege.train.cross_kd import (aligned_loss, load_aligned_teacher, pair_row, paired_examples,
                                            pairs_in_batch, teacher_targets)

        teacher, vmap = load_aligned_teacher(teacher_name, student, "train.onpolicy.cross_tokenizer")
        examples, paired = paired_examples(spec, rows, student, teacher, cfg.train.max_seq_len, o.align)
        kind = kind_of(spec)
        prompts_of = [kind.prompt(spec, Example(**{k: v for k, v in r.items() if k in Example.model_fields}))
                      for r in rows]
    else:
        teacher = load_lm(teacher_name)
        check_same_tokenizer(student.tokenizer, teacher.tokenizer, student.name, teacher.name)
        examples = build_examples(spec, rows, student, cfg.train.max_seq_len)
    budget = o.budget_tokens if o.budget_tokens is not None or o.budget_seconds is not None or not o.match_sft \
        else sft_tokens(examples, cfg.train.epochs)
    passes = Passes(JsonlLog(stage / TRAIN_LOG), budget, o.budget_seconds)
    tok = student.tokenizer
    max_new = o.max_new_tokens or kind_of(spec).MAX_NEW_TOKENS

    def loss_fn(model, batch, indices):
        passes.resume()
        teacher_text = uses_teacher_text(cfg.train.seed, indices, o.mix)
        entries = [paired[i] for i in indices] if cross else None
        if teacher_text:
            sampled = 0
        else:
            prompts = [prompt_ids(examples[i]) for i in indices]
            answers = sample_answers(model, prompts, tok.pad_token_id, tok.eos_token_id, max_new, o.temperature)
            sampled = sum(len(p) + len(a) for p, a in zip(prompts, answers))
            if cross:  # the teacher reads the student's text in its own tokens: re-tokenised and aligned
                rebuilt = [pair_row(student, teacher, prompts_of[i], tok.decode(a, skip_special_tokens=True),
                                    tok.eos_token_id in a, cfg.train.max_seq_len, o.align)
                           for i, a in zip(indices, answers)]
                fresh, entries = [r[0] for r in rebuilt], [r[1] for r in rebuilt]
            else:
                fresh = [{"input_ids": p + a, "labels": [-100] * len(p) + a} for p, a in zip(prompts, answers)]
            batch = {k: v.to(batch["input_ids"].device) for k, v in collate(fresh, tok.pad_token_id).items()}
        if cross:
            def loss_of(rows, sub):
                mine = [entries[r] for r in rows]
                return aligned_loss(model, teacher_targets(teacher, mine, vmap, 1.0, o.chunk_tokens), sub, mine,
                                    vmap, 1.0, 1.0, *divergence_args(o.beta), o.chunk_tokens)

            def count_of(rows, sub):  # aligned_kd_loss's mean is over the aligned positions
                return len(pairs_in_batch(sub, [entries[r] for r in rows])[0])
        else:
            def loss_of(rows, sub):
                return distill_loss(model, teacher.model, sub, o.beta, o.top_k, o.chunk_tokens)

            count_of = answer_tokens
        if o.micro_batch_tokens is None:
            everything = list(range(len(indices)))
            loss, parts = loss_of(everything, batch)
            parts[AVERAGED_OVER] = count_of(everything, batch)  # the sampled answers', not the curated rows'
        else:
            loss, parts = backward_in_parts(batch, o.micro_batch_tokens, loss_of, count_of)
            if cross:  # the share of answer positions aligned, over the whole batch
                answer_positions = int((batch["labels"][:, 1:] != -100).sum())
                parts["aligned"] = parts[AVERAGED_OVER] / max(1, answer_positions)
        # + the teacher's scoring and the student's training; over every process's share of the batch
        passes.tokens += int(total_over_processes(sampled + 2 * int(batch["attention_mask"].sum())))
        return loss, {"kd": parts["kd"], AVERAGED_OVER: parts[AVERAGED_OVER], "on_policy": not teacher_text,
                      "passes": passes.tokens,
                      "compute_seconds": round(passes.seconds(), 3),
                      **({"aligned": parts["aligned"]} if cross else {})}

    summary = train_lora(cfg.train, stage, student, examples, loss_fn,
                         desc=f"train LoRA on-policy b={o.beta} l={o.mix}", progress=progress, stop=passes.stop)
    passes.resume()  # a rerun with no step left to run still reports what the log counted
    return {**summary, "method": "onpolicy", "teacher": teacher_name, "beta": o.beta, "lambda": o.mix,
            "cross_tokenizer": cross,
            "divergence": divergence_kind(o.beta), "budget": {"tokens": budget, "seconds": o.budget_seconds},
            "tokens": {"total": passes.tokens}, "compute_seconds": round(passes.seconds(), 1)}


class OnPolicy:
    """train.method=onpolicy: the teacher's logits on the student's own samples (train.onpolicy)."""

    name = "onpolicy"

    def train(self, job) -> dict:
        return run_onpolicy(job.spec, job.cfg, job.stage, job.student, job.rows, progress=job.progress)

"""train.method=kd: LoRA on the same answer tokens as SFT, with the teacher's logits as a second target.

    loss = (1 - alpha) * CE(gold) + alpha * T^2 * KD(student_T || teacher_T)     (train/kd_loss.py)

The teacher (train.kd.teacher; by default generate.teacher, or generate.answers_teacher in the answer modes) is a
local model with the student's vocabulary, another tokenizer (train/cross_kd.py), or an OpenAI-compatible endpoint
serving the student's tokenizer whose prompt log-probabilities fill the cache (train/served_teacher.py).
`signal: cache` writes the teacher's top-k log-probabilities once per (teacher, examples, k, temperature) to
runs/<task>/kd-cache-<key>/ (train/logit_cache.py; resumable, reused by every alpha and divergence), and the
loop reads them back; `signal: online` keeps the teacher in memory and runs it on every batch (no disk, exact
full-vocabulary KD). Either way the vocabulary projection runs in chunks, so memory does not grow with V x tokens.
"""
from __future__ import annotations

import torch

from protege.config import RunConfig
from protege.models.precision import key_part
from protege.models.resolve import release_teacher
from protege.store import StageDir, content_key
from protege.tasks.spec import TaskSpec
from protege.train.kd_loss import balanced_kd_loss, check_same_tokenizer
from protege.train.loop import train_lora
from protege.train.micro_batch import answer_mean_in_parts
from protege.train.shared_prefix import body_hidden
from protege.train.sft import build_examples


def same_vocabulary(name: str, student) -> bool:
    """Whether teacher `name`'s tokenizer is the student's (read from its folder; the model is not loaded)."""
    from transformers import AutoTokenizer

    from protege.models.resolve import model_dir

    if name.startswith("openai:"):
        return True  # refused with its own message by load_kd_teacher
    return AutoTokenizer.from_pretrained(str(model_dir(name))).get_vocab() == student.tokenizer.get_vocab()


def load_kd_teacher(cfg: RunConfig, student):
    from protege.models.resolve import load_lm

    name = cfg.teacher_for("kd")
    if name.startswith("openai:"):
        if cfg.train.kd.signal != "cache":
            raise ValueError(f"train.kd.teacher: {name} is an HTTP endpoint, whose log-probabilities come into the "
                             "offline cache; set train.kd.signal: cache (online KD needs the teacher in memory)")
        from protege.train.served_teacher import ServedTeacher

        return ServedTeacher(load_lm(name), student, student.model.get_output_embeddings().weight.shape[0])
    teacher = load_lm(name)
    check_same_tokenizer(student.tokenizer, teacher.tokenizer, student.name, teacher.name)
    return teacher


def cache_folder(stage: StageDir, cfg: RunConfig, examples: list[dict]):
    key = {"teacher": cfg.teacher_for("kd"), "k": cfg.train.kd.top_k, "t": cfg.train.kd.temperature,
           "examples": [(e["input_ids"], e["labels"]) for e in examples]}
    key.update(key_part())  # the teacher runs in the precision in force
    return stage.path.parent / f"kd-cache-{content_key(key)}"


def run_kd(spec: TaskSpec, cfg: RunConfig, stage: StageDir, student, rows: list[dict], progress: bool = True) -> dict:
    kd = cfg.train.kd
    if kd.alpha > 0 and kd.cross_tokenizer != "refuse" and (kd.cross_tokenizer == "align"
                                                             or not same_vocabulary(cfg.teacher_for("kd"), student)):
        from protege.train.cross_kd import run_cross_kd

        return run_cross_kd(spec, cfg, stage, student, rows, progress=progress)
    examples = build_examples(spec, rows, student, cfg.train.max_seq_len)
    teacher, cache, cache_info = None, None, {}
    if kd.alpha > 0 and kd.signal == "cache":
        from protege.train.logit_cache import LogitCache, write_logit_cache

        from protege.train.distributed import barrier, process_group

        folder = cache_folder(stage, cfg, examples)
        writer = process_group()[0] == 0  # with several processes, the first writes the cache, the rest wait
        if writer and not (folder / "meta.json").exists():  # a finished cache needs no teacher in memory
            teacher = load_kd_teacher(cfg, student)
            if hasattr(teacher, "topk_rows"):  # served: its log-probabilities come over HTTP
                write_logit_cache(folder, teacher, examples, kd.top_k, kd.temperature, batch_size=8,
                                  progress=progress)
            else:
                with teacher.autocast():  # the precision the online signal would run in
                    write_logit_cache(folder, teacher.model, examples, kd.top_k, kd.temperature, batch_size=8,
                                      progress=progress)
            teacher = None  # its logits are on disk now: free the memory
            release_teacher(cfg.teacher_for("kd"), cfg.train.student)
        barrier()
        cache = LogitCache(folder, k=kd.top_k, temperature=kd.temperature, examples=examples)
        cache_info = {"cache": str(folder), "cache_bytes_per_token": cache.bytes_per_token}
    elif kd.alpha > 0:
        teacher = load_kd_teacher(cfg, student)

    def loss_fn(model, batch, indices):
        inner = model.get_base_model()
        hidden = body_hidden(inner, batch["input_ids"], batch["attention_mask"])
        targets = batch["labels"][:, 1:]
        keep = targets != -100
        signal = None
        if cache is not None:
            signal = cache.batch(indices).to(hidden.device)  # read on the host, used where the student runs
        elif teacher is not None:
            with torch.no_grad():
                signal = teacher.model(input_ids=batch["input_ids"],
                                       attention_mask=batch["attention_mask"]).logits[:, :-1][keep]
        loss, parts = balanced_kd_loss(hidden[:, :-1][keep], inner.lm_head, targets[keep], signal, kd.alpha,
                                       kd.temperature, kd.divergence, kd.beta, chunk_tokens=kd.chunk_tokens)
        return loss, {k: v for k, v in parts.items() if v == v}  # NaN: the part alpha switched off

    step_loss = answer_mean_in_parts(loss_fn, cfg.train.micro_batch_tokens)
    summary = train_lora(cfg.train, stage, student, examples, step_loss, desc=f"train LoRA KD a={kd.alpha}",
                         progress=progress)
    return {"method": "kd", "teacher": cfg.teacher_for("kd"), "alpha": kd.alpha, "temperature": kd.temperature,
            "divergence": kd.divergence, "signal": kd.signal, **cache_info, **summary}


class KD:
    """train.method=kd: the answer tokens of SFT with the teacher's logits as a second target (train.kd)."""

    name = "kd"

    def train(self, job) -> dict:
        return run_kd(job.spec, job.cfg, job.stage, job.student, job.rows, progress=job.progress)

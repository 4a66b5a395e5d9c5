"""Local transformers backend: batched generation and continuation scoring on CPU or GPU.

    lm = LocalLM.from_dir("path/to/hf-model")          # any directory with config + safetensors + tokenizer
    lm.generate(["Write a question about Paris."], GenerationConfig(max_new_tokens=32, temperature=0.8))
    lm.score_continuations([{"role": "user", "content": "2+2?"}], ["4", "5"])

How it computes is the precision setting (models/precision.py): `LocalLM(..., precision="fp32")` pins it for
this model, else the setting in force (a run's `precision`, `use_precision`, $PROTEGE_PRECISION; auto: bf16
autocast on CPUs with AMX/AVX-512 BF16 and on GPUs, fp32 elsewhere). Weights stay fp32 so training and scoring
keep full-precision master copies; generation under bf16 runs a twin whose Linear weights are stored in bf16
(models/bf16_twin.py: the same numbers as autocast, about twice as fast), made once per model.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm.auto import tqdm

from protege.models.base import Generation, GenerationConfig, Prompt
from protege.models.bf16_twin import bf16_linear_twin, has_float_linears
from protege.models.precision import autocast, resolve_precision
from protege.models.prefix_cache import caching_supported, prefilled_batch
from protege.models.prefix_scoring import PrefixScorer
from protege.models.shared_prefix_decode import decode, sampling_from, shared_decoding_supported, stop_checker


class LocalLM:
    """A causal LM held in memory; `name` is how the rest of protege refers to it."""

    def __init__(self, name: str, model, tokenizer, device: str | None = None, batch_size: int = 16,
                 prefix_caching: bool = True, precision: str | None = None):
        from protege.models.device import resolve_device

        device = device or resolve_device()  # None: the device setting in force (models/device.py)
        self.name = name
        self.precision = precision  # None: the setting in force at each call (models/precision.py)
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        # Run a prompt prefix shared within a batch once (prefix_cache.py); off: every prompt in full.
        self.prefix_caching = prefix_caching and caching_supported(self.model)
        # ... and keep it once, read once per decoding step (shared_prefix_decode.py); off: transformers' generate
        self.shared_decoding = self.prefix_caching and shared_decoding_supported(self.model)
        self.prompt_tokens = {"sent": 0, "cached": 0, "prefix_computed": 0}  # running totals, for benchmarks
        self.score_slots = SCORE_SLOTS
        self._prefix_scorer = PrefixScorer()
        self._twin = None  # (the model it was made from, its bf16-Linear twin)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_dir(cls, path: str | Path, name: str | None = None, **kwargs) -> "LocalLM":
        """Weights in fp32 on the CPU (bf16 runs as autocast, with a bf16 twin for decoding); on a GPU in the
        compute dtype (bf16 where the precision resolves to it; LoRA adapters trained on it stay fp32, as peft
        keeps them)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from protege.models.device import resolve_device

        device = kwargs.get("device") or resolve_device()
        on_gpu_bf16 = device != "cpu" and resolve_precision(kwargs.get("precision"), device) == "bf16"
        kwargs["device"] = device
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.bfloat16 if on_gpu_bf16 else torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(name or str(path), model, tokenizer, **kwargs)

    def resolved_precision(self) -> str:
        """`fp32` or `bf16`: how this model computes now."""
        return resolve_precision(self.precision, self.device)

    def autocast(self):
        """The autocast block every forward pass of this model runs in."""
        return autocast(self.resolved_precision(), self.device)

    def decoding_model(self):
        """The model generate() runs: under bf16 the twin with bf16 Linear weights (made once, remade if `model`
        is replaced, e.g. by an int8 copy), else the model itself."""
        if self.resolved_precision() != "bf16":
            return self.model
        if self._twin is None or self._twin[0] is not self.model:
            twin = bf16_linear_twin(self.model) if has_float_linears(self.model) else self.model
            self._twin = (self.model, twin)
        return self._twin[1]

    # -- prompts --------------------------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees: chat template with the assistant turn opened, or the raw string."""
        if isinstance(prompt, str):
            return prompt
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        # Base models without a template see the turns as plain text.
        text = "".join(f"{m['content']}\n\n" for m in prompt if m["role"] != "assistant")
        return text

    def end_of_turn(self, prompt: Prompt) -> str:
        """The text that closes an assistant turn (so 'number' is not scored as a prefix of 'numbers')."""
        if isinstance(prompt, str) or not self.tokenizer.chat_template:
            return "\n"
        return self.tokenizer.eos_token or ""

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- generation -----------------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig, progress: bool = False) -> list[Generation]:
        texts = [self.render(p) for p in prompts]
        # With prefix caching, text order puts prompts that share a prefix in one batch; without, similar
        # lengths batch with less padding.
        by_text, by_length = (lambda i: texts[i]), (lambda i: len(texts[i]))
        order = sorted(range(len(texts)), key=by_text if self.prefix_caching else by_length)
        results: list[Generation | None] = [None] * len(texts)
        bar = tqdm(total=len(texts), desc=f"generate {self.name}", disable=not progress, unit="prompt")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            for i, gen in zip(idx, self._generate_batch([texts[i] for i in idx], config, seed=config.seed + start)):
                results[i] = gen
            bar.update(len(idx))
        bar.close()
        return results  # type: ignore[return-value]

    def _generate_batch(self, texts: list[str], config: GenerationConfig, seed: int) -> list[Generation]:
        tok = self.tokenizer
        rows = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        kwargs = dict(max_new_tokens=config.max_new_tokens, pad_token_id=tok.pad_token_id)
        if config.temperature > 0:
            torch.manual_seed(seed)
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
        else:
            kwargs.update(do_sample=False)
        if config.stop:
            kwargs["stop_strings"] = config.stop  # rows stop at a stop string instead of running to the cap
        gen_config = copy.deepcopy(self.model.generation_config)
        gen_config.update(**kwargs)
        started = time.monotonic()
        shared = self.prefix_caching and self.shared_decoding
        stop_when = stop_checker(tok, config.stop, config.stop_pattern)
        sampling = sampling_from(gen_config, seed, stop_when) if shared else None
        if sampling is not None:
            sampling.eos_ids.add(tok.eos_token_id)  # the plain path cuts there too
            if config.max_seconds is not None:
                sampling.deadline = started + config.max_seconds
            return self._shared_decode(rows, sampling, config.stop)
        if config.max_seconds is not None:
            gen_config.max_time = config.max_seconds  # transformers' MaxTimeCriteria, counted from here
        model = self.decoding_model()
        with torch.inference_mode(), self.autocast():
            batch = (prefilled_batch(model, rows, tok.pad_token_id, config.max_new_tokens)
                     if self.prefix_caching else None)
            if batch is None:
                tok.padding_side = "left"
                inputs = dict(tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device))
            else:
                inputs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              past_key_values=batch.cache)
                self.prompt_tokens["cached"] += batch.cached_tokens
                self.prompt_tokens["prefix_computed"] += batch.computed_tokens
            self.prompt_tokens["sent"] += sum(len(r) for r in rows)
            criteria = (pattern_stop(stop_when, inputs["input_ids"].shape[1]) if config.stop_pattern is not None
                        else None)
            out = model.generate(**inputs, generation_config=gen_config, tokenizer=tok, stopping_criteria=criteria)
        new = out[:, inputs["input_ids"].shape[1] :]
        gens = [self._generation(row.tolist(), prompt, config.stop) for row, prompt in zip(new, rows)]
        if config.max_seconds is not None and time.monotonic() - started >= config.max_seconds:
            for gen, row in zip(gens, new.tolist()):  # cut by the clock: neither an end of turn nor at the cap
                ended = tok.eos_token_id in row or gen.tokens_out >= config.max_new_tokens
                stopped = any(stop in tok.decode(row) for stop in config.stop) or (
                    config.stop_pattern is not None and stop_when(row))
                gen.timed_out = not ended and not stopped
        return gens

    def _generation(self, ids: list[int], prompt: list[int], stops: list[str]) -> Generation:
        """A row's new ids as a Generation: cut at end of turn, without the pads that fill finished rows, its text
        cut at the first stop string."""
        tok = self.tokenizer
        if tok.eos_token_id is not None and tok.eos_token_id in ids:
            ids = ids[: ids.index(tok.eos_token_id)]
        ids = [t for t in ids if t != tok.pad_token_id]
        text = _cut_at_stop(tok.decode(ids, skip_special_tokens=True), stops)
        return Generation(text=text, tokens_in=len(prompt), tokens_out=len(ids))

    def _shared_decode(self, rows: list[list[int]], sampling, stops: list[str]) -> list[Generation]:
        with torch.inference_mode(), self.autocast():
            out = decode(self.decoding_model(), rows, sampling)
        self.prompt_tokens["sent"] += sum(len(r) for r in rows)
        self.prompt_tokens["cached"] += out.cached_tokens
        self.prompt_tokens["prefix_computed"] += out.prefix_tokens_run
        gens = [self._generation(ids, row, stops) for ids, row in zip(out.tokens, rows)]
        for i in out.cut:
            gens[i].timed_out = True
        return gens

    # -- scoring --------------------------------------------------------------------------------------------
    def score_continuations(self, prompt: Prompt, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation after the prompt (see `score_many`)."""
        return self.score_many([prompt], continuations)[0]

    def score_many(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[list[float]]:
        """Log-probabilities of the same continuations after each of several prompts.

        The prompts are encoded once, left-padded in one batch, and their KV cache is shared by all
        continuations, so scoring L labels costs about one prompt pass rather than L. Continuations of one token
        need only that pass; past `score_slots` cached prompt tokens, longer ones run one continuation at a time.
        """
        tok = self.tokenizer
        prefixes = [self.render(p) for p in prompts]
        prefix_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prefixes]
        cont_ids = [[tok(p + c + self.end_of_turn(pr), add_special_tokens=False)["input_ids"][len(ids):]
                     for c in continuations] for p, ids, pr in zip(prefixes, prefix_ids, prompts)]
        n, k = len(prompts), len(continuations)
        plen = max(len(ids) for ids in prefix_ids)
        clen = max(len(c) for row in cont_ids for c in row)
        pad = tok.pad_token_id
        if self.prefix_caching:  # a long prefix the prompts share (few-shot) runs once, kept between calls
            with torch.inference_mode(), self.autocast():
                shared = self._prefix_scorer.score(self.model, prefix_ids, cont_ids, pad, self.score_slots)
            if shared is not None:
                return shared
        ids = torch.full((n, plen), pad)
        mask = torch.zeros((n, plen), dtype=torch.long)
        for i, row in enumerate(prefix_ids):
            ids[i, plen - len(row):] = torch.tensor(row)
            mask[i, plen - len(row):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        # All continuations at once repeat the prompts' cache once per continuation; past SCORE_SLOTS prompt-token
        # copies (77 Banking77 labels after a 77-shot prompt: 77 copies of ~2,800 tokens per prompt) they run one
        # at a time over the one cache instead, each cropped off again afterwards.
        group = k if n * k * plen <= self.score_slots else 1
        scores = [[0.0] * k for _ in range(n)]
        with torch.inference_mode(), self.autocast():
            # logits of the last prompt position only: all of them would be prompts x length x vocabulary (2.2 GB
            # for 8 Banking77 77-shot prompts on SmolLM2)
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             position_ids=pos.to(self.device), use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[:, -1].float(), -1)
            croppable = getattr(out.past_key_values, "is_croppable", True)
            for i in range(n):
                for j, c in enumerate(cont_ids[i]):
                    scores[i][j] = first[i, c[0]].item()
            for start in range(0, k if clen > 1 else 0, group):
                labels = range(start, min(k, start + group))
                g = len(labels)
                conts = torch.full((n * g, clen), pad)
                for i in range(n):
                    for jj, j in enumerate(labels):
                        c = cont_ids[i][j]
                        conts[i * g + jj, : len(c)] = torch.tensor(c)
                cache = out.past_key_values
                if g > 1:
                    cache.batch_repeat_interleave(g)
                elif not croppable:  # e.g. sliding-window layers: score on a copy instead
                    cache = copy.deepcopy(cache)
                cont_pos = pos[:, -1:].repeat_interleave(g, 0) + 1 + torch.arange(clen)
                full_mask = torch.cat([mask.repeat_interleave(g, 0), torch.ones(n * g, clen, dtype=torch.long)], 1)
                logits = self.model(input_ids=conts.to(self.device), attention_mask=full_mask.to(self.device),
                                    position_ids=cont_pos.to(self.device), past_key_values=cache).logits
                logp = torch.log_softmax(logits.float(), -1)
                del logits
                if g < k and croppable:  # one label at a time: drop its tokens, the prompts' cache is reused
                    cache.crop(-clen)  # transformers 5 crops by the number of tokens to drop
                for i in range(n):
                    for jj, j in enumerate(labels):
                        c, total = cont_ids[i][j], scores[i][j]
                        for t in range(1, len(c)):  # summed in the order a single pass sums them
                            total += logp[i * g + jj, t - 1, c[t]].item()
                        scores[i][j] = total
        return scores


SCORE_SLOTS = 1 << 14  # prompt-token copies one label-scoring pass may hold in its repeated KV cache


def pattern_stop(stop_when, start: int):
    """transformers' stopping criteria for GenerationConfig.stop_pattern: a row is done once its new ids (after
    the prompt's `start` columns) satisfy `stop_when` (shared_prefix_decode.stop_checker)."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class PatternStop(StoppingCriteria):
        def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
            rows = input_ids[:, start:].tolist()
            return torch.tensor([stop_when(r) for r in rows], dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([PatternStop()])


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for s in stops:
        pos = text.find(s)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]

"""What the generate stage will cost, estimated before running it (printed by `protege generate --dry-run`).

    from protege.synth.projection import project_generation, format_projection
    proj = project_generation(spec, cfg.generate, lm, price_in_per_m=0.15, price_out_per_m=0.60)
    print(format_projection(proj))

How each figure is made:
  tokens in   exact for a local teacher: every pending request's prompt is rendered with the teacher's chat
              template and counted with its tokenizer, the same text and count `LocalLM.generate` records.
              An HTTP teacher's tokenizer is not on this machine: its prompts' characters are counted and
              converted at the characters-per-token the calibration batch's `usage` reports (4 without one).
  tokens out  calibrated: the first pending batch(es) are really generated, with the stage's decoding settings
              and the very seed `run_generate` gives that batch, and their mean tokens out per example is
              scaled to all pending examples. With `calibrate=0` nothing is generated and the figure is the
              upper bound `examples * max_new_tokens` (no time estimate then).
  wall time   the calibration's seconds per example times the pending examples. Model loading is not included.
  money       tokens in and out times the given prices per million tokens; a local teacher costs nothing, so
              callers pass prices only for HTTP teachers (the calibration itself is billed there too).

Known error sources: the mean tokens out of one batch of sampled replies (a handful of examples that run to the
`max_new_tokens` cap moves it); a batch decodes until its longest row stops, so time follows the slowest row,
not the mean; a partial last batch is costed per example although it runs about as many decoding steps as a full
one; wall time on a shared machine moves with whatever else runs there. The calibration repeats the real run's
first batch exactly, so on small runs part of the "estimate" is in fact measured.
"""
from __future__ import annotations

import math
import time
from typing import Iterable, Optional

from protege.config import GenerateConfig
from protege.synth.generate import decoding_config
from protege.synth.plan import max_new_tokens, planned_requests
from protege.tasks.spec import TaskSpec


def project_generation(spec: TaskSpec, cfg: GenerateConfig, lm, calibrate: Optional[int] = None,
                       price_in_per_m: float = 0.0, price_out_per_m: float = 0.0,
                       done_ids: Iterable[str] = ()) -> dict:
    """Estimate tokens in/out, wall time and money of generating the pending requests of this stage.

    `lm` needs `name`, `render`, `count_tokens` and `generate` (a LocalLM). `calibrate` is how many examples to
    really generate for the estimate, rounded up to whole batches of `cfg.batch_size`; None means one batch,
    0 means none. `done_ids` are the ids already in samples.jsonl (a resumed run generates only the others).
    """
    if calibrate is not None and calibrate < 0:
        raise ValueError(f"calibrate={calibrate}: pass a number of examples >= 0 (0 skips calibration)")
    done = set(done_ids)
    plan = planned_requests(spec, cfg)
    todo = [r for r in plan if r["id"] not in done]
    n, bs = len(todo), cfg.batch_size
    k = min(n, bs * math.ceil((bs if calibrate is None else calibrate) / bs))
    calib = _calibrate(spec, cfg, lm, todo[:k]) if k else None
    if hasattr(lm, "count_tokens"):
        tokens_in = sum(lm.count_tokens(lm.render(r["prompt"])) for r in todo)
        in_method = "exact: prompts counted with the teacher's tokenizer"
    else:
        chars = sum(_chars(r["prompt"]) for r in todo)
        per_token = sum(_chars(r["prompt"]) for r in todo[:k]) / calib["tokens_in"] if calib else 4.0
        tokens_in = round(chars / per_token)
        in_method = (f"estimated: {chars:,} characters at {per_token:.2f} per token, "
                     + ("the ratio the calibration's usage reported" if calib else "a rule of thumb"))
    if calib:
        tokens_out = round(calib["tokens_out"] / k * n)
        seconds = calib["seconds"] / k * n
        method = f"calibrated on {k} of {n} examples"
    elif n == 0:
        tokens_out, seconds, method = 0, 0.0, "nothing pending"
    else:
        tokens_out, seconds = n * max_new_tokens(spec, cfg), None
        method = "upper bound: examples x max_new_tokens (no calibration)"
    cost = tokens_in / 1e6 * price_in_per_m + tokens_out / 1e6 * price_out_per_m
    return {"teacher": lm.name, "examples": n, "already_done": len(plan) - n,
            "batches": math.ceil(n / bs), "batch_size": bs, "max_new_tokens": max_new_tokens(spec, cfg),
            "tokens_in": tokens_in, "tokens_in_method": in_method, "tokens_out_est": tokens_out, "seconds_est": seconds,
            "price_in_per_m": price_in_per_m, "price_out_per_m": price_out_per_m, "cost_est": cost,
            "method": method, "calibration": calib}


def _chars(prompt) -> int:
    return len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)


def _calibrate(spec: TaskSpec, cfg: GenerateConfig, lm, requests: list[dict]) -> dict:
    """Generate `requests` batch by batch exactly as `run_generate` would, timing only the generation."""
    # Untimed warm-up: the first generate call in a process pays one-off costs (stop-string tables, allocator)
    # that a whole run pays once but a one-batch calibration would multiply by the number of batches.
    warm = decoding_config(spec, cfg, requests[0]["id"])
    warm.max_new_tokens = 1
    lm.generate([requests[0]["prompt"]], warm)
    seconds, outs = 0.0, []
    for start in range(0, len(requests), cfg.batch_size):
        batch = requests[start : start + cfg.batch_size]
        t0 = time.perf_counter()
        outs += lm.generate([r["prompt"] for r in batch], decoding_config(spec, cfg, batch[0]["id"]))
        seconds += time.perf_counter() - t0
    tokens_out = sum(o.tokens_out for o in outs)
    return {"examples": len(outs), "seconds": seconds, "tokens_in": sum(o.tokens_in for o in outs),
            "tokens_out": tokens_out, "tokens_out_per_example": tokens_out / len(outs),
            "at_cap": sum(o.tokens_out >= max_new_tokens(spec, cfg) for o in outs)}


def format_projection(p: dict) -> str:
    """A few lines for the terminal."""
    if not p["examples"]:
        return (f"generate projection for {p['teacher']}: nothing to generate, all {p['already_done']} requests "
                "are already in samples.jsonl")
    lines = [f"generate projection for {p['teacher']}: {p['examples']} examples to generate "
             f"({p['already_done']} already done), {p['batches']} batches of {p['batch_size']}",
             f"  tokens in   {p['tokens_in']:,} ({p['tokens_in_method']})"]
    c = p["calibration"]
    if c:
        lines.append(f"  tokens out  ~{p['tokens_out_est']:,} ({p['method']}: {c['tokens_out_per_example']:.1f} "
                     f"per example, {c['at_cap']} of {c['examples']} hit max_new_tokens={p['max_new_tokens']})")
        lines.append(f"  wall time   ~{_duration(p['seconds_est'])} (calibration took {c['seconds']:.1f} s; "
                     "model loading not included)")
    else:
        lines.append(f"  tokens out  <= {p['tokens_out_est']:,} ({p['method']})")
        lines.append("  wall time   not estimated (no calibration)")
    if p["price_in_per_m"] or p["price_out_per_m"]:
        lines.append(f"  cost        ~${p['cost_est']:.4f} at ${p['price_in_per_m']:g}/M tokens in, "
                     f"${p['price_out_per_m']:g}/M out")
    else:
        lines.append("  cost        $0 (a local teacher costs no money; for an HTTP teacher set cost.price_in_per_m and "
                     "cost.price_out_per_m)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

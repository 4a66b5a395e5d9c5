"""Style match of teacher-only vs cooperative answers, measured on the answers themselves, before any curation
or training: does the cooperative data read more like the student's own writing?

    python -m protege.lab.experiments.answer_style configs/cooperative-gsm8k.yaml \\
        --out docs/experiments/cooperative-gsm8k.md

Both variants (generate.mode=answers and =cooperative) answer the same teacher items; this runs them to the
answers stage only. For the items both answered, it reports per variant: answers that reach the item's own
final number (math) or hold code (code), the student's share of the characters, and the student's per-token NLL
of every answer (right or wrong), rendered and scored as SFT renders and scores training rows
(benchmark/capacity.py `measure`). The NLL difference gets a percentile bootstrap CI over items. At 135M
parameters few answers are right, so curation would keep too few to train on; the NLL needs none of that.
"""
from __future__ import annotations

import random
import sys

from protege.config import load_config
from protege.lab.experiments.cooperative import VARIANTS
from protege.lab.experiments.doc_table import config_command
from protege.pipeline import Pipeline
from protege.store import ANSWERS, SAMPLES, JsonlLog
from protege.tasks.kinds import kind_of



def answer_row(spec, item: dict, raw: str) -> dict | None:
    """The item as a training row with `raw` as its answer (None: a code answer without code)."""
    from protege.synth.answers import answer_record

    fields = {k: v for k, v in item.items() if k in ("id", "text", "answers", "tests", "entry_point", "context")}
    if kind_of(spec).EXECUTES_CODE:  # the answers stage's own rule: the program, and the reasoning before it
        record = answer_record(spec, item, raw)
        return {**fields, **{k: v for k, v in record.items() if k in ("reference", "rationale")}} if record["ok"] \
            else None
    return {**fields, "reference": raw.strip()}


def run_answer_variants(config: str, overrides: list[str]) -> list[dict]:
    out = []
    for name, extra in VARIANTS.items():
        cfg = load_config(config, list(overrides) + extra)
        pipe = Pipeline(cfg)
        pipe.run("answers")
        items = {r["id"]: r for r in JsonlLog(pipe.stages["generate"] / SAMPLES).read() if r["ok"]}
        answers = {a["id"]: a for a in JsonlLog(pipe.stages["answers"] / ANSWERS).read()}
        out.append({"name": name, "cfg": cfg, "spec": pipe.spec, "items": items, "answers": answers,
                    "dir": str(pipe.stages["answers"].path)})
    return out


def per_item_nll(spec, rows: list[dict], lm, max_seq_len: int) -> dict[str, tuple[float, int]]:
    """Item id -> (sum of the student's answer-token NLL, answer tokens)."""
    from protege.benchmark.capacity import answer_nll
    from protege.train.sft import build_examples

    out = {}
    for row in rows:
        total, tokens = answer_nll(lm.model, build_examples(spec, [row], lm, max_seq_len), lm.tokenizer.pad_token_id)
        out[row["id"]] = (total, tokens)
    return out


def bootstrap_difference(a: dict, b: dict, ids: list[str], resamples: int = 2000, seed: int = 0) -> tuple:
    """(b - a) in per-token NLL over `ids`, with a 95% percentile bootstrap interval over items."""
    def ratio(nll: dict, pick: list[str]) -> float:
        return sum(nll[i][0] for i in pick) / sum(nll[i][1] for i in pick)

    rng = random.Random(seed)
    diffs = sorted(ratio(b, s) - ratio(a, s) for s in ([rng.choice(ids) for _ in ids] for _ in range(resamples)))
    return ratio(b, ids) - ratio(a, ids), (diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1])


def style_table(variants: list[dict], command: str) -> str:
    from protege.models.resolve import load_lm

    spec, cfg = variants[0]["spec"], variants[0]["cfg"]
    ids = sorted(set.intersection(*(set(v["answers"]) for v in variants)))
    rows = {v["name"]: [r for i in ids if (r := answer_row(spec, v["items"][i], v["answers"][i]["raw"]))]
            for v in variants}
    ids = sorted(set.intersection(*({r["id"] for r in rs} for rs in rows.values())))
    student = load_lm(cfg.train.student)
    nll = {name: per_item_nll(spec, [r for r in rs if r["id"] in ids], student, cfg.train.max_seq_len)
           for name, rs in rows.items()}
    teacher = cfg.generate.answers_teacher or cfg.generate.teacher
    lines = [f"Command: `{command}`", "",
             f"Items answered by both variants: {len(ids)}; teacher {teacher}; student {cfg.train.student}.", "",
             "| answers by | right (reach the item's answer) | student's share of characters | mean answer length "
             "(chars) | student NLL per answer token | answer tokens | answers |", "|---|---|---|---|---|---|---|"]
    for v in variants:
        recs = [v["answers"][i] for i in ids]
        chars = [r.get("chars") or {"teacher": len(r["raw"])} for r in recs]
        total = sum(sum(c.values()) for c in chars)
        share = sum(c.get("student", 0) for c in chars) / total if total else 0.0
        n = nll[v["name"]]
        tokens = sum(t for _, t in n.values())
        lines.append(f"| {v['name']} | {sum(r['ok'] for r in recs)} of {len(recs)} | {100 * share:.1f}% | "
                     f"{sum(len(r['raw']) for r in recs) / len(recs):.0f} | "
                     f"{sum(s for s, _ in n.values()) / tokens:.3f} | {tokens:,} | `{v['dir']}` |")
    diff, (lo, hi) = bootstrap_difference(nll[variants[0]["name"]], nll[variants[1]["name"]], ids)
    lines += ["", f"Cooperative minus teacher-only, student NLL per answer token: {diff:+.3f} nats, 95% bootstrap "
                  f"CI over items [{lo:+.3f}, {hi:+.3f}] (negative: the cooperative answers read more like the "
                  "student's own writing)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    config_command(argv, __doc__, "protege.lab.experiments.answer_style",
                   lambda config, overrides, command: style_table(run_answer_variants(config, overrides), command))

if __name__ == "__main__":
    main(sys.argv[1:])

"""Teacher-only vs cooperative answers for the same items and prompts: which data trains the better student?

    python -m protege.lab.experiments.cooperative configs/code-mbpp.yaml --out docs/experiments/cooperative.md \\
        generate.student=hf:STUDENT train.student=hf:STUDENT

Two variants of one run config, sharing the teacher's items (the generate stage's samples are written the same
way; only the answers differ): generate.mode=answers (the teacher alone answers each item's prompt) and
generate.mode=cooperative (teacher and student in turns). For each: items kept by curation, the student's
per-token NLL on the curated answers before training (style match: lower = closer to the student's own voice),
the share of answer characters the student wrote, and the fine-tuned student's headline metric with its CI,
with an exact McNemar test between the two fine-tuned students on the same test items.
"""
from __future__ import annotations

import sys

from protege.evaluate.rows import Row
from protege.lab.experiments.compare import fine_tuned, paired, row, run_variants
from protege.lab.experiments.doc_table import config_command
from protege.store import ANSWERS, JsonlLog


VARIANTS = {"teacher only": ["generate.mode=answers"], "cooperative": ["generate.mode=cooperative"]}


def student_share(result: dict) -> float | None:
    answers = JsonlLog(result["stages"]["answers"] / ANSWERS).read()  # the answers stage, not generate
    chars = [a.get("chars") for a in answers if a.get("ok") and a.get("chars")]
    total = sum(sum(c.values()) for c in chars)
    return sum(c.get("student", 0) for c in chars) / total if total else None


def style_nll(result: dict) -> dict:
    from protege.benchmark.capacity import run_capacity

    return run_capacity(result["cfg"], echo=lambda m: None)


def cooperative_table(results: list[dict], command: str) -> str:
    metric = results[0]["eval"]["metric"]
    base = row(results[0], Row.ZERO_SHOT)
    lines = [f"Command: `{command}`", "",
             f"Test items: {results[0]['eval']['test_items']}; metric: {metric} (points, 95% bootstrap CI); "
             f"student zero-shot baseline {100 * base[metric]:.1f}.", "",
             f"| answers by | items kept | student NLL on the data | student's share of characters | fine-tuned "
             f"{metric} | 95% CI | vs teacher-only (paired) | run |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        value, (lo, hi) = fine_tuned(r)
        nll = style_nll(r)
        share = student_share(r)
        vs = "" if r is results[0] else paired(results[0], r)
        lines.append(f"| {r['name']} | {r['curate']['kept']} | {nll['nll_per_token']:.3f} ({nll['tokens']:,} tokens) | "
                     f"{'' if share is None else f'{100 * share:.0f}%'} | {100 * value:.1f} | [{100 * lo:.1f}, "
                     f"{100 * hi:.1f}] | {vs} | `{r['eval_dir']}` |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    def make_table(config: str, overrides: list[str], command: str) -> str:
        return cooperative_table(run_variants(config, VARIANTS, overrides), command)

    config_command(argv, __doc__, "protege.lab.experiments.cooperative", make_table)

if __name__ == "__main__":
    main(sys.argv[1:])

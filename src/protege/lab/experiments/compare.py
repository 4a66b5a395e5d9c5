"""Shared by the experiment commands: run one config in several variants to the eval stage, and compare the
fine-tuned students on the same test items.

    results = run_variants("configs/code-mbpp.yaml", {"sft": ["train.method=sft"], "dpo": ["train.method=dpo"]})
    fine_tuned(results[0]) -> (value, (low, high)); paired(results[0], results[1]) -> "p = ... (a vs b items)"
    paired_test(results[0], results[1]) -> exact McNemar's dict (p_value, b, c)
    vs_untuned(results[0]) -> "p = ... (a vs b)"; suite_changes(results[0]) -> "humaneval 4.9 -> 3.7; ..."
    test_reads(results) -> "Test-set reads ...": the eval stages' access logs, counted for the doc
    train_seconds(results[0]) -> "472" (or "n/a" where the training stage's summary is not on this machine)
"""
from __future__ import annotations

from pathlib import Path

from protege.config import load_config
from protege.evaluate.rows import Row
from protege.pipeline import Pipeline
from protege.store import RESULTS, JsonlLog, read_json


def run_variants(config: str, variants: dict[str, list[str]], overrides: list[str] = ()) -> list[dict]:
    """Each variant is the config plus the shared overrides plus its own; finished stages are reused."""
    results = []
    for name, extra in variants.items():
        cfg = load_config(config, list(overrides) + extra)
        pipe = Pipeline(cfg)
        pipe.run("eval")
        results.append({"name": name, "cfg": cfg, "spec": pipe.spec, "stages": pipe.stages,
                        "generate": read_json(pipe.stages["generate"] / "MANIFEST.json")["summary"],
                        "curate": read_json(pipe.stages["curate"] / "MANIFEST.json")["summary"],
                        "train": pipe.train_summary(),
                        "eval_dir": str(pipe.stages["eval"].path),
                        "eval": read_json(pipe.stages["eval"] / RESULTS)})
    return results


def train_seconds(result: dict) -> str:
    """The arm's training wall time for a table cell; "n/a" for an evaluation whose training stage is not on this
    machine and which was made before results.json kept the train summary."""
    seconds = result["train"].get("seconds")
    return "n/a" if seconds is None else str(round(seconds))


def train_compute(result: dict) -> str:
    """The arm's training compute for a table cell: optimizer steps and token passes (tokens through one forward,
    as the budgeted methods count them); "n/a" where the training stage's summary is not on this machine."""
    summary = result["train"]
    if not summary:
        return "n/a"
    tokens = summary.get("tokens", {}).get("total")
    return f"{summary.get('steps')} steps, {tokens:,} token passes" if tokens else f"{summary.get('steps')} steps"


def row(result: dict, name: str = Row.FINE_TUNED) -> dict:
    return next(r for r in result["eval"]["rows"] if r["row"] == name)


def fine_tuned(result: dict) -> tuple[float, tuple[float, float]]:
    metric = result["eval"]["metric"]
    r = row(result)
    return r[metric], tuple(r[f"{metric}_ci"])


def _correct(result: dict, row_name: str = Row.FINE_TUNED) -> dict:
    from protege.evaluate.summary import item_correct

    records = JsonlLog(Path(result["eval_dir"]) / row(result, row_name)["samples"]).read()
    return {r["id"]: item_correct(result["spec"], r) for r in records}


def _exact(ca: dict, cb: dict) -> dict:
    """Exact McNemar (two-sided binomial tail over the discordant items, at any count, as the benchmark's
    paired test) over the items both answered: p_value, b (items only a got right) and c (only b)."""
    from protege.benchmark.rank_tests import paired_test as binary_or_wilcoxon

    ids = sorted(set(ca) & set(cb))
    return binary_or_wilcoxon([float(ca[i]) for i in ids], [float(cb[i]) for i in ids])


def paired_test(a: dict, b: dict) -> dict:
    """Exact McNemar on the two fine-tuned students' per-item correctness (see _exact)."""
    return _exact(_correct(a), _correct(b))


def paired(a: dict, b: dict) -> str:
    test = paired_test(a, b)
    return f"p = {test['p_value']:.3g} ({test['b']} vs {test['c']} items only one got right)"


def vs_untuned(result: dict) -> str:
    """Exact McNemar of the fine-tuned student against its zero-shot self on the same items (the eval stage's own
    comparison switches to a chi-square from 25 discordant items; that one is used only where the zero-shot
    row's answers are not on this machine, and says so)."""
    zero = next((r for r in result["eval"]["rows"] if r["row"] == Row.ZERO_SHOT), None)
    if zero is not None and zero.get("samples") and (Path(result["eval_dir"]) / zero["samples"]).exists():
        test = _exact(_correct(result), _correct(result, Row.ZERO_SHOT))
        return f"p = {test['p_value']:.3g} ({test['b']} vs {test['c']})"
    c = next((c for c in result["eval"]["comparisons"] if c["model_b"] == Row.ZERO_SHOT), None)
    return "n/a" if c is None else (f"p = {c['p_value']:.3g} ({c['only_a_right']} vs {c['only_b_right']}; "
                                    f"{c.get('method', 'stored test')})")


def suite_changes(result: dict) -> str:
    """The forgetting suite's headlines before -> after fine-tuning, in points, task by task."""
    entries = result["eval"].get("forgetting", {}).get("entries", [])
    return "; ".join(f"{e['task']} {100 * e['before']:.1f} -> {100 * e['after']:.1f}"
                     for e in entries if "skipped" not in e) or "n/a"


def test_reads(results: list[dict]) -> str:
    """One sentence for an experiment doc: how often its eval stages read the test set, and what for (each
    stage's test-access.jsonl; evaluate/test_access.py refuses any purpose but final evaluation and
    decontamination). Results still pending, or sharing an eval stage with another, count once or not at all."""
    from collections import Counter

    from protege.evaluate.test_access import LOG_NAME, read_log

    dirs = list(dict.fromkeys(r["eval_dir"] for r in results if not r.get("pending")))
    entries = [e for d in dirs for e in read_log(Path(d) / LOG_NAME)]
    purposes = Counter(e.get("purpose", "?") for e in entries)
    tasks = {e.get("task", "?") for e in entries}
    total = sum(purposes.values())
    what = ", ".join(f"{n} {p}" for p, n in sorted(purposes.items()))
    return (f"Test-set reads logged by these {len(dirs)} eval stages: {total} ({what or 'none'}; "
            f"{', '.join(sorted(tasks)) or 'no task'}): one per row evaluated here, forgetting-suite task and restart "
            "(a row adopted from a finished run, such as a teacher's model-card evaluation, is in that run's log). "
            "The log admits no other purpose, and no choice here was made on a test read.")

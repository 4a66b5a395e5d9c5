"""The reference recipe's size: one run config at several numbers of generated examples, each stage in its own
process, with its wall time, tokens and peak memory (issue 22, docs/experiments/scale.md).

    python -m protege.lab.experiments.scale src/protege/demo-trec6.yaml --sizes 500,2000,10000 \\
        --out docs/experiments/scale.md --rows docs/experiments/scale.json [overrides...]

For each size N the run is the config with generate.num_examples=N in its own runs folder (runs/scale-N), and
each stage runs as `protege <stage> CONFIG` in a child process, so the peak resident memory measured for the
stage (the child's own, from wait4's rusage) is that stage's and nothing before it. A finished stage is reused
(its time then reads "reused"), so a killed sweep resumes. The table gives per stage and size: seconds, tokens
(the stage's manifest: generated tokens in and out, training tokens), peak RSS, and the growth from one size to
the next against the growth of the work (a stage that grows faster than N is the one to look at).

With --rows, every measured row is also kept in that JSON file, with the CPU it ran on, as soon as its stage
ends: a later sweep (another session, other sizes) adds its rows to the same table, a stage that a later run
merely reuses keeps the seconds measured when it ran, and growth is computed only between sizes measured on the
same CPU.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from protege.lab.experiments.doc_table import config_command
from protege.models.precision import machine_summary
from protege.store import atomic_write_json

STAGES = ["generate", "curate", "train", "eval"]


def run_stage(stage: str, config: str, overrides: list[str]) -> dict:
    """One stage in a child process: wall seconds, the child's peak RSS (MiB), its exit status."""
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "protege.cli", stage, config, *overrides],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = child.stdout.read()  # to the end: the child has closed it, then reap it here for its own rusage
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - began
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    reused = f"[{stage}] reused" in output
    return {"stage": stage, "seconds": None if reused else round(seconds, 1), "peak_rss_mib": round(peak),
            "ok": child.returncode == 0, "tail": output[-800:] if child.returncode else ""}


def stage_tokens(runs: Path, stage: str) -> int | None:
    manifests = sorted(runs.rglob(f"{stage}-*/MANIFEST.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return None
    summary = json.loads(manifests[-1].read_text()).get("summary", {})
    if stage == "generate":
        return (summary.get("tokens_in") or 0) + (summary.get("tokens_out") or 0)
    tokens = summary.get("tokens")
    return tokens.get("total") if isinstance(tokens, dict) else None


def earlier_runs(runs: Path, stage: str) -> tuple[int, float]:
    """Processes that worked on the stage before the one that finished it (a sweep killed and resumed), and their
    seconds in all, from the stage's attempts.json (a killed one lasting until its last write)."""
    from protege.store import closed_attempts

    manifests = sorted(runs.rglob(f"{stage}-*/MANIFEST.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        return 0, 0.0
    earlier = [a for a in closed_attempts(manifests[-1].parent)[:-1] if "seconds" in a]
    return len(earlier), round(sum(a["seconds"] for a in earlier), 1)


def sweep(config: str, sizes: list[int], overrides: list[str], keep: Path | None = None) -> list[dict]:
    """Every stage at every size; the rows of all sizes ever measured into `keep` (None: the rows of this run)."""
    rows = json.loads(keep.read_text()) if keep is not None and keep.exists() else []
    here = machine_summary()
    for n in sizes:
        runs = Path("runs") / f"scale-{n}"
        extra = [*overrides, f"generate.num_examples={n}", f"runs_dir={runs}"]
        for stage in STAGES:
            result = run_stage(stage, config, extra)
            if not result["ok"]:
                raise SystemExit(f"{stage} at N={n} failed:\n{result['tail']}")
            row = {"n": n, **result, "tokens": stage_tokens(runs, stage), "machine": here}
            before, before_s = earlier_runs(runs, stage) if result["seconds"] is not None else (0, 0.0)
            if before:  # the stage's seconds over every process that worked on it
                row.update(seconds=round(result["seconds"] + before_s, 1), runs=before + 1)
            earlier = next((r for r in rows if (r["n"], r["stage"]) == (n, stage)), None)
            if earlier is not None and row["seconds"] is None:
                continue  # reused: the row measured when the stage ran stays
            rows = [r for r in rows if r is not earlier] + [row]
            print(json.dumps(row), flush=True)
            if keep is not None:
                atomic_write_json(keep, rows)
    return rows


def table(rows: list[dict], command: str) -> str:
    sizes = sorted({r["n"] for r in rows})
    sizes_on: dict[str, set[int]] = {}  # machine -> the sizes measured on it
    for r in rows:
        sizes_on.setdefault(r.get("machine", "not recorded"), set()).add(r["n"])
    lines = [f"Command: `{command}`", "",
             "Measured on: " + "; ".join(f"{m} (N = {', '.join(f'{n:,}' for n in sorted(ns))})"
                                         for m, ns in sorted(sizes_on.items())), "",
             "| stage | " + " | ".join(f"N = {n:,}: s / tokens / peak MiB" for n in sizes) + " | growth (time) |",
             "|---|" + "---|" * (len(sizes) + 1)]
    for stage in STAGES:
        cells, times = [], []
        for n in sizes:
            r = next((x for x in rows if x["n"] == n and x["stage"] == stage), None)
            if r is None:
                cells.append("n/a")
                continue
            times.append((n, r["seconds"], r.get("machine")))
            seconds = "reused" if r["seconds"] is None else f"{r['seconds']:,.0f}" + (
                f" ({r['runs']} runs)" if r.get("runs", 1) > 1 else "")
            tokens = "" if r["tokens"] is None else f"{r['tokens']:,}"
            cells.append(f"{seconds} / {tokens} / {r['peak_rss_mib']:,}")
        growth = ", ".join(f"x{b[1] / a[1]:.1f} for x{b[0] / a[0]:.0f} N" for a, b in zip(times, times[1:])
                           if a[1] and b[1] and a[2] == b[2])  # one machine's times only
        lines.append(f"| {stage} | " + " | ".join(cells) + f" | {growth or 'n/a'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    config_command(argv, __doc__, "protege.lab.experiments.scale",
                   lambda config, overrides, command, sizes, rows: table(
                       sweep(config, [int(n) for n in sizes.split(",")], overrides, Path(rows) if rows else None),
                       command),
                   options={"sizes": "500,2000,10000", "rows": ""})


if __name__ == "__main__":
    main(sys.argv[1:])

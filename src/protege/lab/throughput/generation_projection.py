"""How close the generate-stage projection comes to a real run: estimate, then generate and measure.

    python -m protege.lab.throughput.generation_projection [--config src/protege/demo-trec6.yaml] [--examples 96]

Prints the projection for the config's generate stage (exact prompt tokens, one calibration batch), then
really generates its first --examples requests with `run_generate` into a temporary folder and prints estimate
against measurement for tokens in, tokens out and generation seconds (model loading excluded on both sides),
also for the batches after the first alone: the calibration repeats the real run's first batch, so those are
the held-out part. The demo (135M teacher, batch 32) on 2 idle CPU cores takes about 0.4 s per example
(session 7: 36.2 s for 96, estimated within 1.2%).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import protege
from protege.config import load_config
from protege.models.resolve import load_lm
from protege.store import SAMPLES, JsonlLog, StageDir
from protege.synth.generate import run_generate
from protege.synth.plan import max_new_tokens, planned_requests
from protege.synth.projection import format_projection, project_generation
from protege.tasks.spec import load_task


class TimedLM:
    """The teacher with the seconds of each generate call recorded (to time the real run batch by batch)."""

    def __init__(self, lm):
        self.lm, self.name, self.seconds = lm, lm.name, []

    def generate(self, prompts, config):
        t0 = time.perf_counter()
        out = self.lm.generate(prompts, config)
        self.seconds.append(time.perf_counter() - t0)
        print(f"  real batch {len(self.seconds)}: {len(prompts)} examples, {self.seconds[-1]:.1f} s, "
              f"{sum(o.tokens_out for o in out)} tokens out", flush=True)
        return out


def _row(what: str, est: float, real: float) -> str:
    err = (est - real) / real * 100 if real else float("nan")
    return f"  {what:<26}{est:>12,.1f}{real:>12,.1f}{err:>+9.1f}%"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(Path(protege.__file__).parent / "demo-trec6.yaml"))
    ap.add_argument("--examples", type=int, default=96)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    spec, full = load_task(cfg.task), cfg.generate
    small = full.model_copy(update={"num_examples": args.examples})
    lm = load_lm(full.teacher, batch_size=full.batch_size)

    proj = project_generation(spec, full, lm)
    print(format_projection(proj), flush=True)
    # The small plan is a prefix of the full one, so its calibration batch is the same: its projection is the
    # full one's per-example rates times its own size (what project_generation would return, minus a rerun).
    calib = proj["calibration"]
    k = calib["examples"]
    per_s = calib["seconds"] / k
    timed = TimedLM(lm)
    with tempfile.TemporaryDirectory() as tmp:
        stage = StageDir(Path(tmp), spec.name, "generate", "bench")
        stage.start({})
        t0 = time.perf_counter()
        run_generate(spec, small, stage, timed, progress=False)
        wall = time.perf_counter() - t0
        records = {r["id"]: r for r in JsonlLog(stage / SAMPLES).read()}
    plan = planned_requests(spec, small)
    rest = [records[r["id"]] for r in plan[k:]]
    n = len(plan)

    print(f"\n{n} examples of {spec.name} with {lm.name}, batch {small.batch_size}, "
          f"max_new_tokens {max_new_tokens(spec, small)}; calibration: the first {k}")
    print(f"  {'':<26}{'estimate':>12}{'measured':>12}{'error':>10}")
    tokens_in = project_generation(spec, small, lm, calibrate=0)["tokens_in"]
    print(_row("tokens in", tokens_in, sum(r["tokens_in"] for r in records.values())))
    print(_row("tokens out", calib["tokens_out_per_example"] * n, sum(r["tokens_out"] for r in records.values())))
    print(_row("seconds (generate calls)", per_s * n, sum(timed.seconds)))
    print(f"  (run_generate wall time, writes included: {wall:.1f} s)")
    if rest:
        print(f"held out: the {len(rest)} examples after the calibration batch")
        print(_row("tokens out", calib["tokens_out_per_example"] * len(rest), sum(r["tokens_out"] for r in rest)))
        print(_row("seconds (generate calls)", per_s * len(rest), sum(timed.seconds[k // small.batch_size :])))


if __name__ == "__main__":
    main()

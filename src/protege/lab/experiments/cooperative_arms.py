"""Teacher-only vs cooperative answers with each boundary predictor, the student trained on the same number of rows.

    python -m protege.lab.experiments.cooperative_arms configs/cooperative-code.yaml \\
        --out docs/experiments/cooperative-code.md [--phase data|all] [--report-only] [--without trained] \\
        [overrides...]
    python -m protege.lab.experiments.cooperative_arms configs/cooperative-code.yaml --ahead N [overrides...]

An override is every variant's (key=value) or one variant's (teacher-only:, lexical: or trained: before it, e.g.
trained:generate.precision=fp32 where that variant's data is made on a CPU without bf16).

Three variants of one run config, the same prompts answered three ways: the teacher alone (generate.mode=answers),
and teacher and student in turns (generate.mode=cooperative) with the lexical boundary predictor and with a
boundary classifier trained for this pair (cooperative/classifier.py; fitted once, on the lexicon's labels of
this teacher's own answers from the first variant and this student's zero-shot answers to the same prompts, and
kept in `<runs>/<task>/boundary-<key>/`). First every variant's data (answers, curation; `--phase data` stops
there); then the student is fine-tuned on the first N curated rows of each, N the smallest count, so the arms
differ in whose words they learn, not in how many, and evaluated. The table: answer wall time (and its ratio to
teacher-only), tokens each side decoded, the student's share of the answer characters, curation yield, the
student's NLL per token on each variant's curated rows before training (all it kept: the N it learns from and any
more; lower: closer to its own voice), the fine-tuned student's headline metric with its CI, exact McNemar against
the teacher-only student and against the untuned student, the forgetting suite before -> after, and how far the two
predictors agree on the cooperative answers.
A fourth arm learns in the student's own voice another way: on-policy distillation (train.method=onpolicy), the
student sampling answers to the same N prompts and the teacher scoring them, at the token passes SFT spends on
those rows (train.onpolicy.match_sft), so it compares with the SFT arms at equal training compute.
"""
from __future__ import annotations

import sys
from pathlib import Path

from protege.config import load_config
from protege.evaluate.rows import Row
from protege.lab.experiments.compare import (fine_tuned, paired, row, suite_changes, test_reads, train_compute,
                                              train_seconds, vs_untuned)
from protege.lab.experiments.cooperative import student_share
from protege.lab.experiments.doc_table import Unfinished, phased_command, run_or_read
from protege.models.precision import key_part, use_precision
from protege.pipeline import Pipeline
from protege.store import ANSWERS, RESULTS, JsonlLog, content_key, read_json

TEACHER_ONLY, LEXICAL, TRAINED = "teacher only", "cooperative, lexical predictor", "cooperative, trained predictor"
ONPOLICY = "on-policy KD (the student's samples, scored by the teacher)"
STUDENT_ANSWERS = "student_answers.jsonl"  # in the predictor's folder: the student's own answers it learns from


def predictor_dir(cfg, teacher_only: Pipeline) -> Path:
    """The trained boundary classifier's folder for this teacher/student pair and these prompts (fitted once;
    the student's answers computed in the answers stage's precision, in the key where it is not fp32)."""
    key = content_key({"teacher_answers": teacher_only.stages["answers"].key, "student": cfg.train.student,
                       **key_part(setting=teacher_only.stage_precision("answers"))})
    return Path(cfg.runs_dir) / teacher_only.spec.name / f"boundary-{key}"


def fit_predictor(cfg, teacher_only: Pipeline, progress: bool = True, run: bool = True) -> tuple[Path, dict]:
    """Fit the boundary classifier on this teacher's answers and the student's own zero-shot answers to the same
    prompts (the eval stage's shared zero-shot row is not used: these are training prompts, not test items).
    `run=False`: the fitted one, or Unfinished."""
    from protege.cooperative.classifier import META_FILE, train_boundary_classifier
    from protege.models.resolve import load_lm
    from protege.models.base import GenerationConfig
    from protege.synth.answers import answer_prompt

    out = predictor_dir(cfg, teacher_only)
    if (out / META_FILE).exists():
        return out, read_json(out / META_FILE)
    if not run:
        raise Unfinished(f"the trained predictor is not fitted yet ({out})")
    answers = JsonlLog(teacher_only.stages["answers"] / ANSWERS).read()
    items = {r["id"]: r for r in JsonlLog(teacher_only.stages["generate"] / "samples.jsonl").read()}
    instruction = cfg.generate.cooperative.answer_instruction
    asked = [(a["id"], answer_prompt(teacher_only.spec, items[a["id"]], instruction)) for a in answers
             if a["id"] in items]
    # The student's answers are kept as they come (a stop loses at most one batch of 16; the run resumes after it).
    log = JsonlLog(out / STUDENT_ANSWERS)
    done = log.ids()
    todo = [(i, prompt) for i, prompt in asked if i not in done]
    if todo:
        student = load_lm(cfg.train.student)
        decoding = GenerationConfig(max_new_tokens=cfg.generate.cooperative.max_new_tokens, temperature=0.0)
        with use_precision(teacher_only.stage_precision("answers")):  # the student writes data, as answers does
            for start in range(0, len(todo), 16):
                batch = todo[start:start + 16]
                log.append([{"id": i, "text": g.text}
                            for (i, _), g in zip(batch, student.generate([p for _, p in batch], decoding))])
    own = {r["id"]: r["text"] for r in log.read()}
    train_boundary_classifier([a["raw"] for a in answers] + [own[i] for i, _ in asked], out)
    return out, read_json(out / META_FILE)


def fitted_predictor(cfg, teacher_only: Pipeline) -> tuple[Path | None, dict | None]:
    """The pair's fitted predictor and its meta, or (None, None) where it is not fitted (nothing is run)."""
    try:
        return fit_predictor(cfg, teacher_only, run=False)
    except Unfinished:
        return None, None


# An override for one variant only, `trained:generate.precision=fp32`: the trained-predictor variant's data in fp32
# where the CPU has no bf16 (the others as the config says, so their finished stages are reused; the table's
# precision column says so). The other overrides are every variant's.
SCOPES = {"teacher-only": TEACHER_ONLY, "lexical": LEXICAL, "trained": TRAINED}


def scoped(overrides: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The overrides for every variant, and each variant's own (`SCOPE:key=value`, SCOPE one of SCOPES)."""
    common, own = [], {name: [] for name in SCOPES.values()}
    for o in overrides:
        scope, colon, rest = o.partition(":")
        if not colon or "=" in scope:  # key=value, whose value may hold a colon (train.student=hf:...)
            common.append(o)
        elif scope in SCOPES:
            own[SCOPES[scope]].append(rest)
        else:
            raise SystemExit(f"override '{o}': '{scope}:' names no variant; write one of "
                             f"{', '.join(s + ':' for s in SCOPES)} before key=value, or key=value for every variant")
    return common, own


def cooperative_with(predictor: str | Path) -> list[str]:
    return ["generate.mode=cooperative", f"generate.cooperative.predictor={predictor}"]


def variants(config: str, overrides: list[str]) -> dict[str, list[str]]:
    """The teacher-only and lexical variants' overrides (the trained one's needs its fitted predictor)."""
    common, own = scoped(overrides)
    base = {TEACHER_ONLY: ["generate.mode=answers"], LEXICAL: cooperative_with("lexical")}
    return {name: common + extra + own[name] for name, extra in base.items()}


def trained_variant(overrides: list[str], predictor: Path) -> list[str]:
    """The trained-predictor variant's overrides: the lexical variant's, cut by the fitted classifier instead."""
    common, own = scoped(overrides)
    return common + cooperative_with(predictor) + own[TRAINED]


def rows_kept(pipe: Pipeline) -> int:
    """The rows curation kept for this variant (its curate stage finished)."""
    return read_json(pipe.stages["curate"] / "MANIFEST.json")["summary"]["kept"]


def left_out(without: str) -> list[str]:
    """`--without trained`: the table without the trained-predictor variant (its data made where the CPU allows;
    the predictor is still fitted and its agreement reported). The other variants are the table's base."""
    names = [n.strip() for n in without.split(",") if n.strip()]
    if wrong := [n for n in names if n != "trained"]:
        raise SystemExit(f"--without {without}: only 'trained' can be left out ({', '.join(wrong)} cannot: the "
                         "teacher-only and lexical variants are every table's base)")
    return [SCOPES[n] for n in names]


def data_phase(config: str, overrides: list[str], run: bool = True, progress: bool = True, without: str = "") -> dict:
    """Every variant's answers and curation (but those `without` names); the trained predictor fitted after the
    teacher-only answers (`without` it, only read where fitted: its agreement is then still reported).
    `run=False` reads them, and raises Unfinished where one is not finished."""
    runs = variants(config, overrides)
    first = Pipeline(load_config(config, runs[TEACHER_ONLY]), progress=progress)
    run_or_read(first, "curate", TEACHER_ONLY, run)
    if TRAINED in (skipped := left_out(without)):  # read where fitted, not fitted (the student's answers: hours)
        folder, meta = fitted_predictor(first.cfg, first)
    else:
        folder, meta = fit_predictor(first.cfg, first, progress, run=run)
        runs[TRAINED] = trained_variant(overrides, folder)
    data = {"student": first.cfg.train.student, "teacher": first.cfg.teacher_for("answers"),
            "predictor": folder and {"dir": str(folder), **meta}, "left_out": skipped, "variants": {}}
    for name, args in runs.items():
        pipe = Pipeline(load_config(config, args), progress=progress)
        run_or_read(pipe, "curate", name, run)
        answers = JsonlLog(pipe.stages["answers"] / ANSWERS).read()
        summary = read_json(pipe.stages["answers"] / "MANIFEST.json")["summary"]
        data["variants"][name] = {
            "overrides": args, "answered": len(answers), "precision": pipe.stage_precision("answers"),
            "kept": rows_kept(pipe),
            "seconds": summary.get("stage_seconds_all_runs", summary.get("stage_seconds")),
            "teacher_tokens": sum(a.get("tokens", {}).get("teacher", 0) for a in answers),
            "student_tokens": sum(a.get("tokens", {}).get("student", 0) for a in answers),
            "student_share": student_share({"stages": pipe.stages}), "answers_dir": str(pipe.stages["answers"].path)}
    data["agreement"] = folder and predictor_agreement(folder, data["variants"][LEXICAL]["answers_dir"])
    return data


def predictor_agreement(folder: Path, answers_dir: str) -> dict:
    """Token-level agreement of the trained classifier with the lexical labels on the cooperative answers."""
    from protege.cooperative.classifier import ClassifierPredictor, agreement
    from protege.cooperative.lexicon import annotate

    texts = [a["raw"] for a in JsonlLog(Path(answers_dir) / ANSWERS).read() if a.get("raw")]
    gold = [(t, annotate(t)) for t in texts]
    p = ClassifierPredictor(folder)
    return {"texts": len(texts), "accuracy": agreement(p, gold), "style_f1": agreement(p, gold, "style_f1")}


def arm_overrides(data: dict, n: int | None = None) -> dict[str, list[str]]:
    """Each arm's overrides: every variant's student SFT on its first N curated rows (N the smallest yield unless
    given), and the on-policy arm on the teacher-only variant's first N prompts (its generate and curate stages)."""
    n = n or min(v["kept"] for v in data["variants"].values())
    out = {name: v["overrides"] + [f"train.max_examples={n}"] for name, v in data["variants"].items()}
    out[ONPOLICY] = data["variants"][TEACHER_ONLY]["overrides"] + ["train.method=onpolicy",
                                                                   f"train.max_examples={n}"]
    return out


def arms(config: str, overrides: list[str], data: dict, run: bool = True) -> list[dict]:
    """Each arm trained and evaluated (arm_overrides); `run=False` reads the finished ones and lists the others
    as pending. (The overrides are in each variant's.)"""
    return [one_arm(config, name, args, run) for name, args in arm_overrides(data).items()]


def one_arm(config: str, name: str, args: list[str], run: bool = True) -> dict:
    from protege.benchmark.capacity import run_capacity

    cfg = load_config(config, args)
    pipe = Pipeline(cfg)
    if not run and not pipe.stages["eval"].complete:
        return {"name": name, "pending": True}
    # the student's NLL on the variant's curated rows (all kept, not only the first N: the capacity stage's
    # measure of the data); the on-policy arm learns from its own samples instead
    nll = None if name == ONPOLICY else run_capacity(cfg, echo=lambda m: None)
    pipe.run("eval")
    return {"name": name, "n": cfg.train.max_examples, "cfg": cfg, "spec": pipe.spec, "nll": nll,
            "eval_dir": str(pipe.stages["eval"].path), "eval": read_json(pipe.stages["eval"] / RESULTS),
            "train": pipe.train_summary()}


def curated_so_far(config: str, overrides: list[str]) -> dict:
    """The variants whose data is curated, as data_phase gives them (overrides and yield), the others left out:
    the trained one until its predictor is fitted and its answers curated."""
    runs = variants(config, overrides)
    first = Pipeline(load_config(config, runs[TEACHER_ONLY]), progress=False)
    if (folder := fitted_predictor(first.cfg, first)[0]) is not None:
        runs[TRAINED] = trained_variant(overrides, folder)
    done = {}
    for name, args in runs.items():
        pipe = Pipeline(load_config(config, args), progress=False)
        if not pipe.unfinished("curate"):
            done[name] = {"overrides": args, "kept": rows_kept(pipe)}
    return done


def arms_ahead(config: str, overrides: list[str], n: int) -> list[str]:
    """The arms whose data is curated, trained and evaluated at N rows before every variant's data is (a
    variant whose data needs another machine). The whole command takes N = the smallest yield and reuses these
    where that is N (the same stage keys); otherwise it trains them again at its N. Returns the arms run."""
    done = curated_so_far(config, overrides)
    if TEACHER_ONLY not in done:
        raise SystemExit(f"--ahead: the {TEACHER_ONLY} variant's data is not curated yet; run the command without "
                         "--ahead first")
    if short := [f"{name} kept {v['kept']}" for name, v in done.items() if v["kept"] < n]:
        raise SystemExit(f"--ahead {n}: more rows than a curated variant has ({'; '.join(short)}); give at most "
                         f"{min(v['kept'] for v in done.values())}")
    chosen = arm_overrides({"variants": done}, n)
    for name, args in chosen.items():
        print(f"== {name}: train.max_examples={n}", flush=True)
        one_arm(config, name, args)
    return list(chosen)


def predictor_line(p: dict | None, a: dict | None) -> str:
    if p is None:
        return "Trained predictor: not fitted for this pair (its variant left out, so its agreement is not measured)."
    return (f"Trained predictor: `{p['dir']}`, fitted on {p['train_texts']} texts ({p['train_tokens']:,} "
            f"words and symbols); on its {p['held_out_texts']} held-out texts it agrees with the lexical labels on "
            f"{100 * p.get('held_out_accuracy', float('nan')):.1f}% of words (style F1 "
            f"{p.get('held_out_style_f1', float('nan')):.2f}); on the {a['texts']} cooperative answers of the "
            f"lexical variant, {100 * a['accuracy']:.1f}% (style F1 {a['style_f1']:.2f}).")


def table(data: dict, results: list[dict], command: str) -> str:
    v = data["variants"]
    base_s = v[TEACHER_ONLY]["seconds"]
    lines = [f"Command: `{command}`", "", f"Teacher `{data.get('teacher')}`, student `{data.get('student')}`.", "",
             "Data (the same prompts for every variant):", "",
             "| answers by | answered | answer time (s) | x teacher-only | teacher tokens | student tokens "
             "| student's share of characters | kept by curation | data precision |",
             "|---|---|---|---|---|---|---|---|---|"]
    base_precision = v[TEACHER_ONLY]["precision"]
    for name, d in v.items():
        if d["precision"] != base_precision:  # other arithmetic, so in practice another CPU: no ratio
            ratio = f"n/a ({d['precision']} vs {base_precision})"
        else:
            ratio = f"{d['seconds'] / base_s:.2f}" if d["seconds"] and base_s else "n/a"
        share = "n/a" if d["student_share"] is None else f"{100 * d['student_share']:.1f}%"
        lines.append(f"| {name} | {d['answered']} | {d['seconds'] or 0:.0f} | {ratio} | {d['teacher_tokens']:,} | "
                     f"{d['student_tokens']:,} | {share} | {d['kept']} | {d['precision']} |")
    lines += ["", predictor_line(data["predictor"], data["agreement"])]
    if data.get("left_out"):
        lines += ["", f"Left out of this table (`--without`): {'; '.join(data['left_out'])} (its data and arm)."]
    pending = [r["name"] for r in results if r.get("pending")]
    done = [r for r in results if not r.get("pending")]
    if pending:
        lines += ["", "Still running (their rows appear when their evaluation is done): " + "; ".join(pending) + "."]
    if not done:
        return "\n".join(lines) + "\n"
    metric = done[0]["eval"]["metric"]
    zero = row(done[0], Row.ZERO_SHOT)
    lines += ["", f"Student fine-tuned on the first {done[0]['n']} curated rows of each variant; "
              f"{done[0]['eval']['test_items']} test items, {metric} in points with 95% bootstrap CIs; untuned "
              f"(zero-shot) {100 * zero[metric]:.1f}. McNemar: exact, on the same test items.", "",
              f"| answers by | student NLL per token on the curated rows | fine-tuned {metric} | vs teacher-only "
              "| vs untuned | forgetting suite (before -> after) | train compute | train s | eval run |",
              "|---|---|---|---|---|---|---|---|---|"]
    teacher_only = next((r for r in done if r["name"] == TEACHER_ONLY), None)
    for r in done:
        value, (lo, hi) = fine_tuned(r)
        vs = "" if r is teacher_only or teacher_only is None else paired(teacher_only, r)
        nll = "its own samples" if r["nll"] is None else f"{r['nll']['nll_per_token']:.3f}"
        lines.append(f"| {r['name']} | {nll} | {100 * value:.1f} [{100 * lo:.1f}, "
                     f"{100 * hi:.1f}] | {vs} | {vs_untuned(r)} | {suite_changes(r)} | {train_compute(r)} | "
                     f"{train_seconds(r)} | `{r['eval_dir']}` |")
    lines += ["", test_reads(done)]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """`--ahead N` (with the config and overrides) runs arms_ahead and writes no table (the whole command does)."""
    if "--ahead" in argv:
        at = argv.index("--ahead")
        n, rest = int(argv[at + 1]), argv[:at] + argv[at + 2:]
        if others := [a for a in rest if a.startswith("--")]:
            raise SystemExit(f"--ahead takes the config and overrides only, not {' '.join(others)}")
        arms_ahead(rest[0], rest[1:], n)
        return
    phased_command(argv, __doc__, "protege.lab.experiments.cooperative_arms", data_phase, arms, table,
                   options={"without": ""})


if __name__ == "__main__":
    main(sys.argv[1:])

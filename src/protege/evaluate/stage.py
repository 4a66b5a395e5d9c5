"""Eval stage: baseline (zero-shot), baseline (few-shot), fine-tuned student and teacher on one test set,
then the forgetting suite on the student before and after training (its "before" half shared too: forgetting.py).

Rows that are the same computation (a teacher that is also the student, prompted the same way) are computed
once and shared; rows that do not depend on training (baselines, teacher) are also shared across eval stages of
the same task (shared_rows.py), so a bench evaluates each student's baseline once, not once per teacher.
Per-item records go to `samples/<row>.jsonl`; metrics, CIs, paired tests, forgetting gates and provenance to
results.json.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from protege.config import RunConfig
from protege.evaluate.adapter_guard import guard_adapter
from protege.evaluate.cheap_baselines import cheap_baseline_records
from protege.evaluate.comparisons import compare
from protege.evaluate.forgetting import forgetting_after, forgetting_before
from protege.evaluate.model_eval import evaluate_measured, pick_shots
from protege.evaluate.summary import classification_summary, summarize
from protege.evaluate.rows import Row, shown_name
from protege.evaluate.test_access import LOG_NAME, read_log, read_test_set
from protege.provenance import provenance
from protege.store import RESULTS, JsonlLog, StageDir, atomic_write_json, atomic_write_text
from protege.tasks.kinds import kind_of
from protege.tasks.spec import TaskSpec


def load_finetuned(base_name: str, adapter_dir: Path):
    """The student with its LoRA adapter merged in, as a separate model (the base stays as it was)."""
    from peft import PeftModel

    from protege.models.local import LocalLM
    from protege.models.resolve import load_lm

    base = load_lm(base_name)
    merged = PeftModel.from_pretrained(copy.deepcopy(base.model), str(adapter_dir)).merge_and_unload()
    return LocalLM(f"{base_name}+lora", merged, base.tokenizer, device=base.device)


def load_endpoint(cfg: RunConfig, name: str):
    """An OpenAI-compatible model for evaluation: the run's endpoint settings, no budget (evaluation must finish)."""
    from protege.models.resolve import load_lm

    return load_lm(name, **cfg.endpoint.model_dump(), price_in_per_m=cfg.cost.price_in_per_m,
                   price_out_per_m=cfg.cost.price_out_per_m)


def money_per_1k(cfg: RunConfig, model_name: str, summary: dict) -> float | None:
    """Money per 1000 answers at the configured prices for an HTTP model (its measured mean tokens in and out);
    None for a local model, which costs this machine's time (the seconds columns) and no money."""
    if not model_name.startswith("openai:"):
        return None
    c = cfg.cost
    return 1000 * (summary["tokens_in_mean"] * c.price_in_per_m + summary["tokens_out_mean"] * c.price_out_per_m) / 1e6


def run_eval(spec: TaskSpec, cfg: RunConfig, stage: StageDir, adapter_dir: Path, train_rows: list[dict],
             progress: bool = True, train_summary: dict | None = None) -> dict:
    """The eval stage: every row on the test set, paired comparisons, cheap baselines and the forgetting suite, into
    results.json (which keeps `train_summary`, the train stage's, so an evaluation read on another machine still
    says what its training cost)."""
    ecfg = cfg.eval
    few = ecfg.few_shot_per_label
    guard_adapter(stage, adapter_dir)  # a retrained adapter re-scores the fine-tuned records, never mixes with them
    student, teacher = cfg.train.student, cfg.teacher_for("answers")
    # row name -> (model name, shots); identical (model, shots) pairs share one computation
    plan = {Row.ZERO_SHOT: (student, 0), Row.FEW_SHOT: (student, few), Row.FINE_TUNED: ("finetuned", 0)}
    if ecfg.evaluate_teacher:
        plan[Row.TEACHER] = (teacher, few if ecfg.teacher_shots is None else ecfg.teacher_shots)
    shots = {key: pick_shots(spec, key[1]) for key in dict.fromkeys(plan.values())}  # picked (and checked) once
    computed: dict = {}
    memory: dict = {}
    finetuned = None
    before = None
    # What does not need the adapter comes first (the untuned and teacher rows, then the forgetting suite's
    # "before" half, all shared rows), what the fine-tuned student scores last: an evaluation cut off between
    # sessions leaves for later only the part a retrained adapter would score again anyway (adapter_guard.py).
    for row, (model_name, n_shots) in sorted(plan.items(), key=lambda entry: entry[1][0] == "finetuned"):
        key = (model_name, n_shots)
        if key in computed:
            continue
        slug = _slug(model_name, n_shots, few)
        name = shown_name(row, len(shots[key])) or str(row)  # the log and progress bar name it by its shots
        if model_name == "finetuned":
            before = forgetting_before(spec, ecfg, stage, student, progress=progress)
        # Each computation reads the test set once, through the access log (final evaluation only).
        items = read_test_set(spec, stage / LOG_NAME, stage, "final evaluation", who=name, limit=ecfg.max_test_items)
        if model_name == "finetuned" and cfg.executor.kind == "ray":
            computed[key], memory[key] = _score_on_ray(cfg, spec, student, adapter_dir, items, [], ecfg.scoring,
                                                       JsonlLog(stage / "samples" / f"{slug}.jsonl"), name, progress)
        elif model_name == "finetuned":
            lm = finetuned = load_finetuned(student, adapter_dir)
            computed[key], memory[key] = _score(lm, spec, items, [], ecfg, ecfg.scoring,
                                                JsonlLog(stage / "samples" / f"{slug}.jsonl"), name, progress,
                                                remote=False)
        else:
            computed[key], memory[key] = _shared_row(cfg, spec, stage, model_name, n_shots, shots[key], items, name,
                                                     progress)
            # The stage keeps its own copy, so every number in results.json is traceable inside its folder.
            atomic_write_text(stage / "samples" / f"{slug}.jsonl", "".join(json.dumps(r) + "\n" for r in computed[key]))
    rows = []
    for row, (model_name, n_shots) in plan.items():
        key = (model_name, n_shots)
        summary = summarize(spec, computed[key], ecfg.bootstrap_resamples)
        if summary.get("warning"):
            print(f"[eval] {row}: {summary['warning']}")
        rows.append({"row": row, "model": student if model_name == "finetuned" else model_name,
                     "adapter": str(adapter_dir) if model_name == "finetuned" else None,
                     "shots": len(shots[key]), "samples": f"samples/{_slug(model_name, n_shots, few)}.jsonl",
                     **memory[key], **summary, "money_per_1k": money_per_1k(cfg, model_name, summary)})
    tuned = computed[("finetuned", 0)]
    comparisons = [compare(spec, Row.FINE_TUNED, tuned, row, computed[key], ecfg.bootstrap_resamples)
                   for row, key in plan.items() if key[0] != "finetuned"]
    baselines = _cheap_baselines(spec, train_rows, items, stage, ecfg.bootstrap_resamples)
    if finetuned is None:
        finetuned = load_finetuned(student, adapter_dir)
    forgetting = forgetting_after(before, ecfg, stage, finetuned, progress=progress)
    reads = [r for r in read_log(stage / LOG_NAME) if r["task"] == spec.name]
    results = {"task": spec.name, "kind": spec.kind, "metric": spec.headline_metric, "scoring": ecfg.scoring,
               "test_items": len(items), "test_reads": len(reads), "test_access_log": LOG_NAME, "rows": rows,
               "comparisons": comparisons, "baselines": baselines, "forgetting": forgetting, "config": cfg.model_dump(),
               **({"train": train_summary} if train_summary else {}), **provenance()}
    atomic_write_json(stage / RESULTS, results)
    metric = spec.headline_metric
    return {"metric": metric, **{row["row"]: round(row[metric], 4) for row in rows},
            "forgetting_gate": "passed" if forgetting["passed"] else "FAILED"}


def _score(lm, spec: TaskSpec, items, shots, ecfg, scoring: str, log: JsonlLog, row: str,
           progress: bool, remote: bool) -> tuple[list[dict], dict]:
    """One model's per-item records on the test items, and the memory it took."""
    return evaluate_measured(lm, spec, items, shots, log, scoring, ecfg.allow_code_execution, f"eval {row}",
                             progress, remote)


def _score_on_ray(cfg: RunConfig, spec: TaskSpec, model: str, adapter: Path | None, items, shots, scoring: str,
                  log: JsonlLog, row: str, progress: bool) -> tuple[list[dict], dict]:
    """A local model's row on Ray workers (evaluate/sharded.py); its memory is the workers', not recorded here."""
    from protege.evaluate.sharded import evaluate_on_ray
    from protege.models.device import requested_device
    from protege.models.precision import requested

    records = evaluate_on_ray(model, adapter, spec, items, shots, log, scoring, cfg.eval.allow_code_execution,
                              cfg.executor, precision=cfg.precision or requested(),
                              device=cfg.device or requested_device(), progress=progress, desc=f"eval {row}")
    return records, {"peak_rss_mb": None, "weights_mb": None, "ray_workers": cfg.executor.workers,
                     "scoring": scoring if kind_of(spec).LABELLED else "generate"}


def _slug(model_name: str, n_shots: int, few: int) -> str:
    """samples/<model>-<shots>.jsonl: the names runs have always had, and the shot count where it is neither
    zero nor the few-shot row's."""
    shots = "zeroshot" if n_shots == 0 else "fewshot" if n_shots == few else f"{n_shots}shot"
    return f"{model_name.replace(':', '_').replace('/', '_')}-{shots}"


def _shared_row(cfg: RunConfig, spec: TaskSpec, stage: StageDir, model_name: str, n_shots: int, shots, items,
                row: str, progress: bool) -> tuple[list[dict], dict]:
    """A row that does not depend on training (baseline or teacher): computed once per task folder and shared by
    every eval stage that asks for the same model, shots, scoring and test slice (shared_rows.py); a finished
    `protege eval`/`protege baselines` run of the same model, shots, scoring and slice is adopted instead."""
    from protege.evaluate.shared_rows import SharedRow
    from protege.models.resolve import load_lm

    remote = model_name.startswith("openai:")
    # An endpoint cannot score label likelihoods: its row generates and parses instead.
    scoring = "generate" if remote else cfg.eval.scoring
    shared = SharedRow(stage.path.parent, spec, model_name, shots, cfg.eval, scoring)

    def compute(log: JsonlLog) -> tuple[list[dict], dict]:
        if cfg.executor.kind == "ray" and not remote:
            return _score_on_ray(cfg, spec, model_name, None, items, shots, scoring, log, row, progress)
        lm = load_endpoint(cfg, model_name) if remote else load_lm(model_name)
        return _score(lm, spec, items, shots, cfg.eval, scoring, log, row, progress, remote)

    return shared.records_or_compute(spec, model_name, n_shots, items, cfg.eval.allow_code_execution, compute, row)


def _cheap_baselines(spec: TaskSpec, train_rows: list[dict], items, stage: StageDir, resamples: int) -> list[dict]:
    """Majority class and TF-IDF + logistic regression (classification only); their records kept too."""
    if not kind_of(spec).LABELLED:
        return []
    baselines, lines = [], []
    for name, records in cheap_baseline_records(train_rows, spec.seed_examples(), items).items():
        lines += [json.dumps({**r, "id": f"{name}|{r['id']}"}) + "\n" for r in records]
        baselines.append({"row": name, **classification_summary(records, spec.label_names, resamples)})
    atomic_write_text(stage / "samples" / "cheap-baselines.jsonl", "".join(lines))
    return baselines

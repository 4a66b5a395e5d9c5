"""The flow task spec -> generate -> curate -> train -> eval -> report, each stage a run directory.

    from protege.config import load_config
    from protege.pipeline import Pipeline
    Pipeline(load_config("configs/demo-trec6.yaml")).run("report")

Each stage's key hashes its own config and its upstream key, so changing a setting reruns that stage and
everything after it, and nothing before it. A stage with a MANIFEST is reused; one without resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from protege.config import RunConfig
from protege.models.device import DeviceUnavailable, requested_device, resolve_device, use_device
from protege.models.precision import (describe, key_part, requested, resolve_precision, slow_bf16_notice,
                                      use_precision)
from protege.stage_keys import key_dump
from protege.store import ANSWERS, RESULTS, SAMPLES, TRAIN_LOG, JsonlLog, StageDir, content_key, read_json

STAGES = ["generate", "answers", "curate", "train", "eval", "report"]


class Pipeline:
    def __init__(self, cfg: RunConfig, progress: bool = True, echo=print):
        from protege.tasks.spec import load_task

        from protege.evaluate.forgetting import check_suite
        from protege.synth.curate import check_config as check_curation

        self.cfg = cfg
        self.spec = load_task(cfg.task)
        self.suite = check_suite(cfg.eval)  # a bad suite or gate fails now, not after hours of generation and training
        check_curation(self.spec, cfg.curate)
        from protege.errors import ConfigError
        from protege.synth.answers import check_answer_mode

        if problems := check_answer_mode(self.spec, cfg):
            raise ConfigError("run config", problems)
        self.progress = progress
        self.echo = echo
        self.precision_setting = setting = cfg.precision or requested()  # the config's, else $PROTEGE_PRECISION
        self.device_setting = cfg.device or requested_device()  # the config's, else $PROTEGE_DEVICE
        try:
            self.device = resolve_device(self.device_setting)  # cpu or cuda:N: where every local model runs
        except DeviceUnavailable as e:
            raise ConfigError("device", [str(e)]) from None
        # fp32 or bf16: the run's local models (the teacher's stages may differ: generate.precision, stage_precision)
        self.precision = resolve_precision(setting, self.device)
        task_key = content_key(self.spec.key_fields())
        keys, upstream = {}, task_key
        for name in STAGES:
            if name == "answers" and cfg.generate.mode == "items":
                keys[name] = upstream  # a pass-through: every later key is what it would be without it
                continue
            section = self._key_section(name)
            upstream = content_key({"upstream": upstream, "config": section})
            keys[name] = upstream
        self.stages = {name: StageDir(Path(cfg.runs_dir), self.spec.name, name, keys[name]) for name in STAGES}

    def run(self, until: str = "report") -> StageDir:
        with use_precision(self.precision_setting), use_device(self.device_setting):
            return self._run(until)

    def _run(self, until: str) -> StageDir:
        from protege.errors import ConfigError
        from protege.preflight import eval_problems, model_problems

        from protege.train.distributed import barrier, launched, process_group

        needed = self._needed(until)
        todo = self.unfinished(until)
        if todo and (problems := model_problems(self.cfg, todo) + eval_problems(self.spec, self.cfg, todo)):
            raise ConfigError("run config", problems)  # before any stage runs
        if "eval" in todo:  # a suite that a setting shrinks is said now, not first seen in the report hours later
            from protege.evaluate.forgetting import suite_notices

            for notice in suite_notices(self.spec, self.suite, self.cfg.eval):
                self.echo(f"[eval] {notice}")
        rank, world = process_group() if launched() else (0, 1)
        if world > 1 and [name for name in todo if name != "train"]:
            raise ConfigError("run config", [
                f"{world} processes run the train stage only, and {', '.join(n for n in todo if n != 'train')} "
                "is not done yet; run `protege train CONFIG --processes N`, which runs the stages before train "
                "in one process first"])
        for name in STAGES[: STAGES.index(until) + 1]:
            stage = self.stages[name]
            if stage.complete:
                self.echo(f"[{name}] reused {stage.path}")
                continue
            if name not in needed:
                self.echo(f"[{name}] not needed: every stage after it up to {until} is finished")
                continue
            self.echo(f"[{name}] running in {stage.path}" + (f" ({world} processes)" if world > 1 else ""))
            if self._runs_local_model(name) and (slow := slow_bf16_notice(self.stage_precision(name), self.device)):
                self.echo(f"[{name}] {slow}")
            if rank == 0:  # the other processes of a data-parallel train stage compute and write nothing
                stage.start({"task": self.cfg.task, "stage": name, **self._stage_config(name)})
            barrier()
            if name == "train":
                self._free_for_training()
            began = time.perf_counter()
            with use_precision(self.stage_precision(name)):
                summary = getattr(self, f"_{name}")(stage)
            if rank == 0:  # stage_seconds: the run that finished the stage; a resumed one adds its earlier runs
                seconds = round(time.perf_counter() - began, 1)
                runs, earlier = stage.earlier_attempts()
                stage.finish({**summary, "stage_seconds": seconds,
                              **({"stage_runs": runs + 1, "stage_seconds_all_runs": round(earlier + seconds, 1)}
                                 if runs else {}),
                              **({"processes": world} if world > 1 else {})})
            barrier()
            self.echo(f"[{name}] done: {json.dumps(summary, default=str)[:300]}")
            for notice in summary.get("notices", []):  # what the user should change, in full
                self.echo(f"[{name}] {notice}")
        return self.stages[until]

    def _free_for_training(self) -> None:
        """The models the stages before loaded (the teacher, a cooperative student) leave memory before training,
        which needs it most: a 0.5B student's SFT peaked at 22 GB on a 24 GiB CPU machine, and the 1.5B teacher
        the answers stage left loaded in the same process ran it out of memory. A method that needs its teacher
        (kd, onpolicy) loads it again."""
        from protege.models.resolve import release_all_but

        if dropped := release_all_but(self.cfg.train.student):
            self.echo(f"[train] released from memory before training: {', '.join(dropped)}")

    def _key_section(self, name: str) -> dict:
        """The settings that determine a stage's output (its key also chains the upstream stage's key)."""
        section = self._settings_key(name)
        # A stage that runs a local model computes in the resolved precision on the resolved device
        if not self._runs_local_model(name):
            return section
        return {**section, **key_part(setting=self.stage_precision(name), device=self.device)}

    def stage_precision(self, name: str) -> str:
        """The precision setting a stage's local models compute in: generate.precision for the teacher's stages
        (generate, answers) where it is set, else the run's."""
        if name in ("generate", "answers") and self.cfg.generate.precision is not None:
            return self.cfg.generate.precision
        return self.precision_setting

    def _settings_key(self, name: str) -> dict:
        cfg = self.cfg
        if name == "report":
            return {}
        if name == "train":
            return cfg.train.stage_key()
        if name == "generate":  # the items; how their answers are rewritten is the answers stage's; the precision
            # is added by _key_section as the value it resolves to, as for every stage that runs a local model
            return key_dump(cfg.generate, exclude={"mode", "student", "answers_teacher", "cooperative", "precision"})
        if name == "answers":
            return _answers_key(cfg)
        section = key_dump(getattr(cfg, name)) if name in ("curate", "eval") else getattr(cfg, name).model_dump()
        if name == "eval":
            section["teacher"] = cfg.teacher_for("answers")
        return section

    def _runs_local_model(self, name: str) -> bool:
        g = self.cfg.generate
        if name == "generate":  # human items (prompts_from) need no model
            return g.prompts_from is None and not g.teacher.startswith("openai:")
        if name == "answers":
            answers_remote = self.cfg.teacher_for("answers").startswith("openai:")
            return g.mode == "cooperative" or (g.mode == "answers" and not answers_remote)
        return name in ("train", "eval")  # the student is always local

    def _stage_config(self, name: str) -> dict:
        if name == "report":
            return {}
        run = ({"precision": describe(self.stage_precision(name), self.device)} if self._runs_local_model(name)
               else {})
        if name == "answers":
            return {"answers": _answers_key(self.cfg), **run}
        cfg = getattr(self.cfg, name).model_dump()
        if name == "eval":
            cfg["teacher"] = self.cfg.teacher_for("answers")
            cfg["student"] = self.cfg.train.student
        return {name: cfg, **run}

    def gate_failures(self) -> list[str]:
        """Forgetting gates the finished eval stage failed (empty when they passed or eval has not run)."""
        path = self.stages["eval"] / RESULTS
        if not path.exists():
            return []
        return read_json(path).get("forgetting", {}).get("failures", [])

    def _curated_rows(self) -> list[dict]:
        """The curated training rows, in id order; the first train.max_examples of them when it is set."""
        path = self.stages["curate"] / "data" / "train.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return rows[: self.cfg.train.max_examples] if self.cfg.train.max_examples is not None else rows

    # -- stages ---------------------------------------------------------------------------------------------
    def _generate(self, stage: StageDir) -> dict:
        from protege.synth.generate import run_generate, run_prompts_from
        from protege.synth.teacher import load_teacher
        from protege.synth.teacher_gate import run_teacher_gate

        if self.cfg.generate.prompts_from is not None:  # human-written items: no teacher writes them
            return run_prompts_from(self.spec, self.cfg.generate, stage)
        if self.cfg.executor.kind == "ray" and not self._budgeted_endpoint():
            return self._generate_on_ray(stage)
        lm = load_teacher(self.cfg, stage)
        gate = run_teacher_gate(self.spec, self.cfg, stage, lm, progress=self.progress, echo=self.echo)
        summary = run_generate(self.spec, self.cfg.generate, stage, lm, progress=self.progress)
        return {**summary, "teacher_gate": gate} if gate else summary

    def _budgeted_endpoint(self) -> bool:
        """An endpoint teacher with a budget stays in this process (one budget cannot be split over workers)."""
        c = self.cfg.cost
        if self.cfg.teacher_for("items").startswith("openai:") and (c.budget is not None or c.token_budget):
            self.echo("[generate] executor ray: the teacher is an endpoint with a budget, which one process keeps; "
                      "generating here (the endpoint's requests still go out concurrently)")
            return True
        return False

    def _generate_on_ray(self, stage: StageDir) -> dict:
        from protege.synth.sharded import run_generate_sharded
        from protege.synth.teacher_gate import run_teacher_gate

        gate = None
        if self.cfg.teacher_gate.min_score is not None:  # the gate asks the teacher here, before the workers
            from protege.synth.teacher import load_teacher

            gate = run_teacher_gate(self.spec, self.cfg, stage, load_teacher(self.cfg, stage), progress=self.progress,
                                    echo=self.echo)
        summary = run_generate_sharded(self.spec, self.cfg.generate, stage, self.cfg.teacher_for("items"),
                                       self.cfg.executor, self.stage_precision("generate"), self.device_setting,
                                       progress=self.progress)
        return {**summary, "teacher_gate": gate} if gate else summary

    def _answers(self, stage: StageDir) -> dict:
        mode = self.cfg.generate.mode
        if mode == "items":
            return {"mode": "items"}  # the teacher's items go to curation as written
        from protege.models.resolve import load_lm
        from protege.synth.answers import run_answers
        from protege.synth.teacher import load_teacher

        cfg = self.cfg
        teacher = load_teacher(cfg, stage, "answers")  # under generate.teacher's budget and endpoint
        student = load_lm(cfg.generate.student or cfg.train.student) if mode == "cooperative" else None
        return {"mode": mode, **run_answers(self.spec, self.cfg, self.stages["generate"], stage, teacher, student,
                                            progress=self.progress)}

    def _curate(self, stage: StageDir) -> dict:
        from protege.store import JsonlLog
        from protege.synth.curate import run_curate

        generated = JsonlLog(self.stages["generate"] / SAMPLES).read()
        if self.cfg.generate.mode != "items":
            from protege.synth.answers import merge_answers

            generated = merge_answers(generated, JsonlLog(self.stages["answers"] / ANSWERS).read())
        return run_curate(self.spec, self.cfg.curate, stage, generated)

    def unfinished(self, until: str = "report") -> list[str]:
        """The stages `run(until)` would run (not reuse), in order; [] when everything up to `until` is done."""
        needed = self._needed(until)
        return [name for name in STAGES[: STAGES.index(until) + 1] if name in needed and not self.stages[name].complete]

    def _needed(self, until: str) -> set[str]:
        """The stages a run to `until` has to run or reuse. A later stage may read any earlier one (the report reads
        the train log), so while `until` is unfinished every stage before it is needed; once it is finished,
        nothing before it is (an evaluation carried to this machine without its training stage is read, not
        retrained)."""
        return {until} if self.stages[until].complete else set(STAGES[: STAGES.index(until) + 1])

    def train_summary(self) -> dict:
        """The train stage's MANIFEST summary, or, when only its evaluation is on this machine, the copy the eval
        stage keeps in results.json ({} for an evaluation made before it kept one)."""
        if self.stages["train"].complete:
            return read_json(self.stages["train"] / "MANIFEST.json")["summary"]
        return read_json(self.stages["eval"] / RESULTS).get("train", {})

    def _train(self, stage: StageDir) -> dict:
        from protege.train.stage import run_train_stage, starts_from_sft

        start = self._sft_adapter() if starts_from_sft(self.cfg) else None
        rows = self._curated_rows()
        if self.cfg.train.include_seeds:
            rows += [s.model_dump(exclude_none=True) for s in self.spec.seed_examples()]
        return run_train_stage(self.spec, self.cfg, stage, rows, start, progress=self.progress, echo=self.echo)

    def _sft_adapter(self) -> Path:
        """The adapter of this run's SFT (train.method=sft, every other setting the same): trained now if it is not
        finished, reused if it is (it is an ordinary train stage)."""
        train = self.cfg.train
        sft = self.cfg.model_copy(update={"train": train.model_copy(update={"method": "sft"})})
        done = Pipeline(sft, progress=self.progress, echo=self.echo).run("train")
        self.echo(f"[train] {train.method} starts from the SFT adapter in {done.path}")
        return done.path / "adapter"

    def _eval(self, stage: StageDir) -> dict:
        from protege.evaluate.stage import run_eval

        rows = self._curated_rows()
        return run_eval(self.spec, self.cfg, stage, self.stages["train"] / "adapter", rows, progress=self.progress,
                        train_summary=self.train_summary())

    def _report(self, stage: StageDir) -> dict:
        from protege.report import write_report

        results = read_json(self.stages["eval"] / RESULTS)
        curation = read_json(self.stages["curate"] / "MANIFEST.json")["summary"]
        train_log = JsonlLog(self.stages["train"] / TRAIN_LOG).read()
        write_report(stage, self.spec, results, curation, train_log, eval_dir=self.stages["eval"].path)
        return {"rows": len(results["rows"])}


def _answers_key(cfg: RunConfig) -> dict:
    g = cfg.generate
    if g.mode == "items":
        return {"mode": "items"}
    key = {"mode": g.mode, "cooperative": key_dump(g.cooperative)}
    if g.mode == "cooperative":
        key["student"] = g.student or cfg.train.student
    if g.answers_teacher:  # in the key only when set: runs made before the setting existed keep their keys
        key["teacher"] = g.answers_teacher
    return key

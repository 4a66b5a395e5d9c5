"""The cooperative-arms experiment's parts: the pair's trained predictor, the predictors' agreement, the variants'
stage keys and the table of a run still going on. (Its whole run needs teachers whose answers pass curation,
which random tiny models never write; docs/experiments/cooperative-code.md is that run.)"""
import json

from protege.config import load_config
from protege.lab.experiments import cooperative_arms as arms
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from protege.synth.answers import answer_record
from test_answer_modes import _code_task
from tiny import write_tiny_config
from written_results import finished_result

TEACHER_TEXTS = ["Well, so we loop over the list and add each item.\n```python\ndef f(xs):\n    return sum(xs)\n```",
                 "Okay, let's see: first we sort, then we take the last one.\n```python\ndef g(xs):\n"
                 "    return sorted(xs)[-1]\n```"] * 3


def _teacher_only(tmp_path, tiny_model_dir):
    task = _code_task(tmp_path / "task")
    path = write_tiny_config(tmp_path, tiny_model_dir, task, generate={"cooperative": {"max_new_tokens": 8}},
                             curate={"min_chars": 1, "allow_code_execution": True})
    config = str(path)
    pipe = Pipeline(load_config(config, arms.variants(config, [])[arms.TEACHER_ONLY]), progress=False,
                    echo=lambda m: None)
    items = [{"id": f"gen-{i}", "ok": True, "text": f"Write f returning {i}.", "tests": f"assert f() == {i}"}
             for i in range(len(TEACHER_TEXTS))]
    JsonlLog(pipe.stages["generate"] / "samples.jsonl").append(items)
    JsonlLog(pipe.stages["answers"] / "answers.jsonl").append(
        [{"id": it["id"], "mode": "answers", "raw": t, "ok": True} for it, t in zip(items, TEACHER_TEXTS)])
    return config, pipe


def test_the_trained_predictor_learns_from_both_models_and_is_fitted_once(tmp_path, tiny_model_dir, monkeypatch):
    import protege.cooperative.classifier as classifier

    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    fitted = []
    real = classifier.train_boundary_classifier
    monkeypatch.setattr(classifier, "train_boundary_classifier", lambda texts, out, **k: fitted.append(list(texts))
                        or real(texts, out, **k))
    folder, meta = arms.fit_predictor(pipe.cfg, pipe, progress=False)
    # the teacher's six answers and the student's own answers to the same six prompts
    assert len(fitted) == 1 and len(fitted[0]) == 12 and fitted[0][:6] == TEACHER_TEXTS
    assert meta["train_texts"] + meta["held_out_texts"] == 12
    assert folder.parent == pipe.stages["answers"].path.parent and folder.name.startswith("boundary-")
    again, _ = arms.fit_predictor(pipe.cfg, pipe, progress=False)
    assert again == folder and len(fitted) == 1
    assert fitted[0][6:] == [r["text"] for r in JsonlLog(folder / arms.STUDENT_ANSWERS).read()]


def test_the_predictors_student_answers_are_kept_as_they_come_and_a_refit_reuses_them(tmp_path, tiny_model_dir,
                                                                                      monkeypatch):
    """A fit stopped after the student's answers (the long part) resumes without asking the student again."""
    import protege.cooperative.classifier as classifier
    from protege.models.local import LocalLM

    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    real = classifier.train_boundary_classifier

    def stopped(texts, out, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(classifier, "train_boundary_classifier", stopped)
    try:
        arms.fit_predictor(pipe.cfg, pipe, progress=False)
    except KeyboardInterrupt:
        pass
    folder = arms.predictor_dir(pipe.cfg, pipe)
    kept = JsonlLog(folder / arms.STUDENT_ANSWERS).read()
    assert [r["id"] for r in kept] == [f"gen-{i}" for i in range(6)]
    asked = []
    real_generate = LocalLM.generate
    monkeypatch.setattr(LocalLM, "generate", lambda self, prompts, *a, **k: asked.append(prompts)
                        or real_generate(self, prompts, *a, **k))
    monkeypatch.setattr(classifier, "train_boundary_classifier", real)
    again, meta = arms.fit_predictor(pipe.cfg, pipe, progress=False)
    assert again == folder and asked == [] and meta["train_texts"] + meta["held_out_texts"] == 12
    agree = arms.predictor_agreement(folder, str(pipe.stages["answers"].path))
    assert agree["texts"] == 6 and 0 <= agree["accuracy"] <= 1


def test_reading_the_data_phase_refuses_unfinished_stages_and_an_unfitted_predictor(tmp_path, tiny_model_dir):
    """What --report-only calls: the data read where finished, else Unfinished, and no model asked for anything."""
    import pytest

    from protege.lab.experiments.doc_table import Unfinished

    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    with pytest.raises(Unfinished, match=f"{arms.TEACHER_ONLY}: generate, answers, curate not finished"):
        arms.data_phase(config, [], run=False, progress=False)
    with pytest.raises(Unfinished, match="trained predictor is not fitted"):
        arms.fit_predictor(pipe.cfg, pipe, progress=False, run=False)
    assert not (arms.predictor_dir(pipe.cfg, pipe) / arms.STUDENT_ANSWERS).exists()
    assert not pipe.stages["curate"].complete


def test_variants_share_the_teacher_items_and_differ_in_their_answers(tmp_path, tiny_model_dir):
    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    runs = arms.variants(config, ["train.epochs=1"])
    trained = arms.trained_variant(["train.epochs=1"], tmp_path)
    pipes = [Pipeline(load_config(config, args), progress=False, echo=lambda m: None)
             for args in (runs[arms.TEACHER_ONLY], runs[arms.LEXICAL], trained)]
    assert len({p.stages["generate"].key for p in pipes}) == 1
    assert len({p.stages["answers"].key for p in pipes}) == 3
    assert all(p.cfg.train.epochs == 1 for p in pipes)


def test_an_override_scoped_to_one_variant_changes_only_its_answers(tmp_path, tiny_model_dir):
    """`trained:generate.precision=fp32`: the trained variant's answers in fp32 (a stage of their own), the other
    variants' stages as without it; a value holding a colon is every variant's; an unknown scope is refused with
    the scopes to write."""
    import pytest

    config, _ = _teacher_only(tmp_path, tiny_model_dir)
    common = ["generate.precision=bf16", f"train.student=hf:{tiny_model_dir}"]
    scoped = common + ["trained:generate.precision=fp32"]

    def pipes(overrides):
        runs = {**arms.variants(config, overrides), arms.TRAINED: arms.trained_variant(overrides, tmp_path)}
        return {name: Pipeline(load_config(config, args), progress=False, echo=lambda m: None)
                for name, args in runs.items()}

    before, after = pipes(common), pipes(scoped)
    assert [p.stage_precision("answers") for p in after.values()] == ["bf16", "bf16", "fp32"]
    assert all(p.cfg.train.student == f"hf:{tiny_model_dir}" for p in after.values())
    for name in (arms.TEACHER_ONLY, arms.LEXICAL):
        assert before[name].stages["answers"].key == after[name].stages["answers"].key
    assert before[arms.TRAINED].stages["answers"].key != after[arms.TRAINED].stages["answers"].key
    with pytest.raises(SystemExit, match="'trainde:' names no variant; write one of teacher-only:, lexical:, "
                                         "trained:"):
        arms.variants(config, ["trainde:generate.precision=fp32"])


def test_the_on_policy_arm_learns_from_the_teacher_only_prompts_at_the_sft_arms_size(tmp_path, tiny_model_dir):
    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    runs = arms.variants(config, [])
    data = {"variants": {arms.TEACHER_ONLY: {"overrides": runs[arms.TEACHER_ONLY], "kept": 5},
                         arms.LEXICAL: {"overrides": runs[arms.LEXICAL], "kept": 3}}}
    chosen = arms.arm_overrides(data)
    assert list(chosen) == [arms.TEACHER_ONLY, arms.LEXICAL, arms.ONPOLICY]
    cfgs = {name: load_config(config, args) for name, args in chosen.items()}
    assert {c.train.max_examples for c in cfgs.values()} == {3}  # the smallest yield, for every arm
    assert [c.train.method for c in cfgs.values()] == ["sft", "sft", "onpolicy"]
    pipes = {name: Pipeline(c, progress=False, echo=lambda m: None) for name, c in cfgs.items()}
    on, only = pipes[arms.ONPOLICY], pipes[arms.TEACHER_ONLY]
    assert all(on.stages[s].key == only.stages[s].key for s in ("generate", "answers", "curate"))
    assert on.stages["train"].key != only.stages["train"].key
    assert cfgs[arms.ONPOLICY].train.onpolicy.match_sft  # at the token passes SFT spends on the same rows


def test_without_trained_leaves_its_variant_out_and_the_others_keep_their_arms(tmp_path, tiny_model_dir,
                                                                                monkeypatch):
    """--without trained: the predictor read where it is fitted (its agreement reported) and not fitted where it is
    not; the trained variant neither run nor in the arms, whose N is then the smallest of the other yields;
    anything else cannot be left out."""
    import pytest

    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    ran, fits, fitted = [], [], [True]

    def fit(*a, run=True, **k):
        fits.append(run)
        if not fitted[0] and not run:
            raise arms.Unfinished("not fitted")
        return tmp_path / "boundary-x", {"fitted": 1}

    monkeypatch.setattr(arms, "run_or_read", lambda p, until, name, run: ran.append(name))
    monkeypatch.setattr(arms, "fit_predictor", fit)
    monkeypatch.setattr(arms, "rows_kept", lambda p: {"answers": 5, "cooperative": 4}[p.cfg.generate.mode])
    monkeypatch.setattr(arms, "read_json", lambda path: {"summary": {"stage_seconds": 1.0}})
    monkeypatch.setattr(arms, "JsonlLog", lambda path: type("Log", (), {"read": lambda self: []})())
    monkeypatch.setattr(arms, "student_share", lambda run: None)
    monkeypatch.setattr(arms, "predictor_agreement", lambda folder, answers: {"on": answers})
    data = arms.data_phase(config, [], progress=False, without="trained")
    assert ran == [arms.TEACHER_ONLY, arms.TEACHER_ONLY, arms.LEXICAL] and list(data["variants"]) == ran[1:]
    assert data["left_out"] == [arms.TRAINED] and data["predictor"]["fitted"] == 1 and fits == [False]
    assert data["agreement"]["on"] == data["variants"][arms.LEXICAL]["answers_dir"]
    assert list(arms.arm_overrides(data)) == [arms.TEACHER_ONLY, arms.LEXICAL, arms.ONPOLICY]
    assert {a[-1] for a in arms.arm_overrides(data).values()} == {"train.max_examples=4"}
    fitted[0] = False  # a new pair: left out, its predictor is not fitted, and the table says so
    data = arms.data_phase(config, [], progress=False, without="trained")
    assert data["predictor"] is None and data["agreement"] is None and list(data["variants"]) == ran[4:]
    assert "Trained predictor: not fitted for this pair" in arms.table(data, [], "c")
    ran.clear()
    assert arms.TRAINED in arms.data_phase(config, [], progress=False)["variants"] and len(ran) == 4
    assert fits[-1] is True
    with pytest.raises(SystemExit, match="only 'trained' can be left out \\(lexical cannot"):
        arms.data_phase(config, [], progress=False, without="lexical")


def test_the_table_of_a_run_still_going(tmp_path):
    data = {"predictor": {"dir": "runs/mbpp/boundary-x", "train_texts": 600, "train_tokens": 40000,
                          "held_out_texts": 148, "held_out_accuracy": 0.97, "held_out_style_f1": 0.81},
            "agreement": {"texts": 374, "accuracy": 0.95, "style_f1": 0.7},
            "variants": {arms.TEACHER_ONLY: {"answered": 374, "kept": 160, "seconds": 1000.0, "teacher_tokens": 30000,
                                             "student_tokens": 0, "student_share": None, "precision": "bf16"},
                         arms.LEXICAL: {"answered": 374, "kept": 150, "seconds": 1500.0, "teacher_tokens": 25000,
                                        "student_tokens": 4000, "student_share": 0.125, "precision": "bf16"},
                         arms.TRAINED: {"answered": 374, "kept": 140, "seconds": 3000.0, "teacher_tokens": 25000,
                                        "student_tokens": 4100, "student_share": 0.13, "precision": "fp32"}}}
    text = arms.table(data, [{"name": arms.TEACHER_ONLY, "pending": True}, {"name": arms.ONPOLICY, "pending": True}],
                      "python -m x")
    assert f"| {arms.LEXICAL} | 374 | 1500 | 1.50 | 25,000 | 4,000 | 12.5% | 150 | bf16 |" in text
    # a variant made in another precision (another CPU) has no time ratio to the teacher-only one
    assert f"| {arms.TRAINED} | 374 | 3000 | n/a (fp32 vs bf16) | 25,000 | 4,100 | 13.0% | 140 | fp32 |" in text
    assert f"| {arms.TEACHER_ONLY} | 374 | 1000 | 1.00 | 30,000 | 0 | n/a | 160 | bf16 |" in text
    assert "95.0% (style F1 0.70)" in text and "Still running" in text and arms.TEACHER_ONLY in text.split("Still")[1]
    assert arms.ONPOLICY in text.split("Still")[1] and "Left out" not in text
    data["left_out"] = [arms.TRAINED]
    assert f"Left out of this table (`--without`): {arms.TRAINED} (its data and arm)." in arms.table(data, [], "c")
    json.dumps(data)  # the doc's .json twin holds the data as it is


def test_the_finished_arms_rows_give_nll_compute_and_paired_tests(tiny_task, tmp_path):
    """The on-policy arm's NLL cell says it learns from its own samples; every arm shows its training compute."""
    from protege.tasks.spec import load_task

    spec = load_task(str(tiny_task))
    data = {"predictor": {"dir": "b", "train_texts": 2, "train_tokens": 9, "held_out_texts": 1},
            "agreement": {"texts": 1, "accuracy": 1.0, "style_f1": 1.0},
            "variants": {arms.TEACHER_ONLY: {"answered": 4, "kept": 4, "seconds": 10.0, "teacher_tokens": 9,
                                             "student_tokens": 0, "student_share": None, "precision": "fp32"}}}
    only = finished_result(tmp_path / "a", spec, [True] * 30 + [False] * 10, name=arms.TEACHER_ONLY, n=40,
                           nll={"nll_per_token": 0.8123})
    on = finished_result(tmp_path / "b", spec, [False] * 30 + [True] * 10, name=arms.ONPOLICY, n=40, nll=None)
    text = arms.table(data, [only, on], "python -m x")
    rows = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    assert rows[arms.TEACHER_ONLY].startswith(f"| {arms.TEACHER_ONLY} | 0.812 | 75.0 [65.0, 85.0] |  | p = 0.0123")
    assert rows[arms.ONPOLICY].startswith(f"| {arms.ONPOLICY} | its own samples | 25.0 [15.0, 35.0] | p = ")
    assert "| 3 steps, 4,096 token passes | 12 |" in rows[arms.ONPOLICY]


def test_arms_ahead_train_the_curated_variants_at_the_rows_the_whole_command_will_use(tmp_path, tiny_model_dir,
                                                                                    monkeypatch):
    """--ahead N: before the trained variant's data exists, the teacher-only and on-policy arms run with the
    overrides (so the stage keys) the whole command gives them once N is the smallest yield; N above a curated
    variant's yield, or no curated teacher-only data, is refused."""
    import pytest

    config, pipe = _teacher_only(tmp_path, tiny_model_dir)
    with pytest.raises(SystemExit, match="teacher only variant's data is not curated"):
        arms.arms_ahead(config, [], 1)
    samples = pipe.stages["generate"] / "samples.jsonl"
    items = [{**it, "tokens_in": 1, "tokens_out": 1} for it in JsonlLog(samples).read()]
    samples.unlink()
    JsonlLog(samples).append(items)
    raws = [f"We return {i}.\n```python\ndef f():\n    return {i}\n```" for i in range(len(items))]
    passing = [{"id": it["id"], "mode": "answers", "raw": raw, **answer_record(pipe.spec, it, raw)}
               for it, raw in zip(items, raws)]
    (pipe.stages["answers"] / "answers.jsonl").unlink()
    JsonlLog(pipe.stages["answers"] / "answers.jsonl").append(passing)
    pipe.run("curate")
    kept = arms.curated_so_far(config, [])[arms.TEACHER_ONLY]["kept"]
    assert kept >= 2 and list(arms.curated_so_far(config, [])) == [arms.TEACHER_ONLY]
    with pytest.raises(SystemExit, match=rf"teacher only kept {kept}\); give at most {kept}"):
        arms.arms_ahead(config, [], kept + 1)
    ran = []
    monkeypatch.setattr(arms, "one_arm", lambda config, name, args, run=True: ran.append((name, args)))
    assert arms.arms_ahead(config, [], kept - 1) == [arms.TEACHER_ONLY, arms.ONPOLICY]
    runs = arms.variants(config, [])
    whole = arms.arm_overrides({"variants": {arms.TEACHER_ONLY: {"overrides": runs[arms.TEACHER_ONLY], "kept": kept},
                                             arms.LEXICAL: {"overrides": runs[arms.LEXICAL], "kept": kept - 1}}})
    for name, args in ran:
        ahead, later = (Pipeline(load_config(config, a), progress=False) for a in (args, whole[name]))
        assert ahead.cfg.train.max_examples == kept - 1 and ahead.stages["eval"].key == later.stages["eval"].key

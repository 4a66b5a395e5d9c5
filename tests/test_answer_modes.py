"""generate.mode answers|cooperative: items re-answered by the teacher alone or by teacher and student together."""
import json

import pytest

from protege.config import load_config
from protege.errors import ConfigError
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from protege.synth.answers import answer_record, merge_answers, run_answers
from tiny import build_tiny_model, write_tiny_config


def _task(folder, test_row: dict, spec_yaml: str):
    """A one-test-item task spec written to `folder` (the test row's fields named in spec_yaml)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text(json.dumps(test_row) + "\n")
    (folder / "task.yaml").write_text(spec_yaml)
    return folder / "task.yaml"


def _math_task(folder):
    return _task(folder, {"q": "What is 2 + 2 ?", "a": "4"},
                 "name: tinymath\nkind: math\ndescription: Solve the problem.\n"
                 "seeds:\n  - {text: 'What is 1 + 1 ?', answers: ['2'], reference: '1 + 1 = 2\\n#### 2'}\n"
                 "test: {path: test.jsonl, fields: {text: q, answers: a}}\n")


def _code_task(folder):
    return _task(folder, {"q": "Write f returning 2.", "t": "assert f() == 2"},
                 "name: tinycode\nkind: code\ndescription: Write a Python function.\n"
                 "seeds:\n  - {text: 'Write f returning 1.', tests: 'assert f() == 1', "
                 "reference: 'def f():\\n    return 1'}\n"
                 "test: {path: test.jsonl, fields: {text: q, tests: t}}\n")


def test_answer_records_keep_code_and_check_the_math_number(tmp_path):
    from protege.tasks.spec import load_task

    mbpp = load_task(str(_code_task(tmp_path / "code")))
    assert answer_record(mbpp, {}, "Here:\n```python\ndef f():\n    return 1\n```") == {
        "ok": True, "reference": "def f():\n    return 1", "rationale": "Here:"}
    assert answer_record(mbpp, {}, "```python\ndef f():\n    return 1\n```") == {
        "ok": True, "reference": "def f():\n    return 1"}  # nothing before the block: no rationale
    assert answer_record(mbpp, {}, "")["ok"] is False
    gsm = load_task(str(_math_task(tmp_path / "math")))
    assert answer_record(gsm, {"answers": ["6"]}, "2 * 3 = 6\n#### 6")["ok"] is True
    wrong = answer_record(gsm, {"answers": ["6"]}, "2 + 3 = 5\n#### 5")
    assert wrong["ok"] is False and "5" in wrong["error"]


def test_merge_applies_answers_and_drops_items_without_a_good_one():
    generated = [{"id": "a", "ok": True, "reference": "old"}, {"id": "b", "ok": True, "reference": "old"},
                 {"id": "c", "ok": False, "error": "malformed"}, {"id": "d", "ok": True}]
    answers = [{"id": "a", "ok": True, "reference": "new", "mode": "cooperative"},
               {"id": "b", "ok": False, "error": "the answer holds no code", "mode": "cooperative"}]
    merged = {r["id"]: r for r in merge_answers(generated, answers)}
    assert merged["a"]["reference"] == "new" and merged["a"]["item_reference"] == "old"
    assert merged["b"]["ok"] is False and merged["b"]["error"] == "the answer holds no code"
    assert merged["c"]["error"] == "malformed" and merged["d"]["error"] == "no answer written"
    assert "rationale" not in merged["a"]
    with_reasoning = merge_answers(generated[:1], [{**answers[0], "rationale": "So, add one."}])
    assert with_reasoning[0]["rationale"] == "So, add one."


def test_a_rationale_is_trained_before_the_code_and_evaluation_still_reads_the_code(tmp_path):
    from protege.tasks.kinds import code
    from protege.tasks.spec import Example, load_task

    spec = load_task(str(_code_task(tmp_path / "code")))
    item = Example(text="Write f returning 1.", reference="def f():\n    return 1", rationale="Well, return 1.")
    target = code.target(spec, item)
    assert target == "Well, return 1.\n\n```python\ndef f():\n    return 1\n```"
    assert code.parse(spec, target) == item.reference and code.rationale(target) == "Well, return 1."
    assert code.target(spec, item.model_copy(update={"rationale": None})).startswith("```python")


def test_the_answer_instruction_goes_to_the_last_user_turn_and_into_the_key_only_when_set(tmp_path, tiny_model_dir):
    from protege.synth.answers import with_instruction

    chat = [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}, {"role": "user", "content": "C"}]
    assert with_instruction(chat, None) == chat
    assert with_instruction(chat, "Explain first.")[2]["content"] == "C\n\nExplain first."
    assert with_instruction(chat, "Explain first.")[:2] == chat[:2]
    task = _code_task(tmp_path / "task")

    def answers_key(tmp, **coop):
        cfg = load_config(write_tiny_config(tmp_path / tmp, tiny_model_dir, task, generate={
            "mode": "answers", "cooperative": coop}, curate={"min_chars": 1, "allow_code_execution": True}))
        pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
        return pipe._key_section("answers"), pipe.stages["answers"].key

    plain, plain_key = answers_key("a")
    told, told_key = answers_key("b", answer_instruction="Explain your approach, then write the code.")
    assert "answer_instruction" not in plain["cooperative"] and plain_key != told_key
    assert told["cooperative"]["answer_instruction"].startswith("Explain")
    with pytest.raises(Exception, match="answer_instruction"):
        answers_key("c", answer_instruction="  ")


def test_answer_modes_are_refused_for_classification(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, generate={"mode": "cooperative"}))
    with pytest.raises(ConfigError, match="generate.mode"):
        Pipeline(cfg, progress=False, echo=lambda m: None)


def test_cooperative_answers_record_who_wrote_each_span_and_resume(tmp_path, tiny_model_dir):
    from protege.models.resolve import load_lm

    student_dir = build_tiny_model(tmp_path / "student", seed=1)
    task = _math_task(tmp_path / "task")
    coop = {"max_new_tokens": 24, "final_markers": []}
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, task, generate={
        "mode": "cooperative", "student": f"hf:{student_dir}", "cooperative": coop}))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    other = load_config(write_tiny_config(tmp_path / "b", tiny_model_dir, task, generate={
        "mode": "cooperative", "cooperative": coop}))
    other_pipe = Pipeline(other, progress=False, echo=lambda m: None)
    alone = Pipeline(load_config(write_tiny_config(tmp_path / "c", tiny_model_dir, task, generate={
        "mode": "answers", "cooperative": coop})), progress=False, echo=lambda m: None)
    # the answer modes share the teacher's items; the cooperative student is part of the answers key
    assert other_pipe.stages["generate"].key == pipe.stages["generate"].key == alone.stages["generate"].key
    assert len({p.stages["answers"].key for p in (pipe, other_pipe, alone)}) == 3
    generate, stage = pipe.stages["generate"], pipe.stages["answers"]
    generate.start({})
    items = [{"id": f"gen-{i}", "ok": True, "text": f"What is {i} + 1 ?", "answers": [str(i + 1)]} for i in range(3)]
    JsonlLog(generate / "samples.jsonl").append(items)
    teacher, student = load_lm(f"hf:{tiny_model_dir}"), load_lm(f"hf:{student_dir}")
    summary = run_answers(pipe.spec, cfg, generate, stage, teacher, student, progress=False)
    records = JsonlLog(stage / "answers.jsonl").read()
    assert summary["answered"] == 3 and [r["id"] for r in records] == ["gen-0", "gen-1", "gen-2"]
    for r in records:
        assert "".join(s["text"] for s in r["spans"]) == r["raw"]
        assert {s["by"] for s in r["spans"]} <= {"teacher", "student"} and r["mode"] == "cooperative"
        assert r["ok"] is False  # random tiny models never reach the item's number: the item is dropped
    before = (stage / "answers.jsonl").read_text()
    run_answers(pipe.spec, cfg, generate, stage, teacher, student, progress=False)  # nothing left to do
    assert (stage / "answers.jsonl").read_text() == before


def test_an_answers_teacher_answers_the_items_another_teacher_wrote(tmp_path, tiny_model_dir, monkeypatch):
    """generate.answers_teacher: the items (generate stage) stay the item writer's, the answers stage and the eval's
    teacher row move to the answering teacher, and items mode refuses the setting."""
    other = build_tiny_model(tmp_path / "other", seed=2)
    task = _math_task(tmp_path / "task")

    def pipe(tmp, **generate):
        cfg = load_config(write_tiny_config(tmp_path / tmp, tiny_model_dir, task, generate=generate))
        return Pipeline(cfg, progress=False, echo=lambda m: None)

    plain, told = pipe("a", mode="answers"), pipe("b", mode="answers", answers_teacher=f"hf:{other}")
    assert plain.stages["generate"].key == told.stages["generate"].key
    assert plain.stages["answers"].key != told.stages["answers"].key
    assert "teacher" not in plain._key_section("answers")
    assert told._key_section("eval")["teacher"] == f"hf:{other}" == told.cfg.teacher_for("answers")
    assert plain._key_section("eval")["teacher"] == plain.cfg.generate.teacher
    import protege.synth.teacher as teacher

    loaded, load = [], teacher.load_teacher
    monkeypatch.setattr(teacher, "load_teacher",
                        lambda cfg, stage, role="items": loaded.append(cfg.teacher_for(role)) or load(cfg, stage, role))
    told.run("answers")
    assert loaded == [f"hf:{tiny_model_dir}", f"hf:{other}"]  # the generate stage's, then the answers stage's
    with pytest.raises(ConfigError, match="answers_teacher"):
        pipe("c", answers_teacher=f"hf:{other}")


def test_the_data_stages_teachers_leave_memory_before_training_and_the_student_stays(tmp_path, tiny_model_dir,
                                                                                    monkeypatch):
    """A teacher the answers stage loaded is no longer held when the train stage starts (a 1.5B teacher left loaded
    ran a 24 GiB machine out of memory under a 0.5B student's training); the student, shared, stays loaded."""
    from protege.models import resolve

    other = build_tiny_model(tmp_path / "other", seed=2)
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, _math_task(tmp_path / "task"), generate={
        "mode": "answers", "answers_teacher": f"hf:{other}"}))
    said, held = [], {}
    pipe = Pipeline(cfg, progress=False, echo=said.append)
    monkeypatch.setattr(Pipeline, "_train", lambda self, stage: held.update(names=set(resolve._loaded)) or {})
    student = resolve.load_lm(cfg.train.student)
    pipe.run("train")
    assert f"hf:{other}" not in held["names"] and cfg.train.student in held["names"]
    assert resolve.load_lm(cfg.train.student) is student
    # (other tests' models may be loaded too: all of them are named)
    assert any(m.startswith("[train] released from memory before training: ") and f"hf:{other}" in m for m in said)

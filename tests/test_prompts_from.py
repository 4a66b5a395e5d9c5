"""Human-written items as the training prompts (generate.prompts_from), decontamination against other tasks'
test sets (curate.decontaminate_against), and training on the first N curated rows (train.max_examples)."""
import json

import pytest

from protege.config import load_config
from protege.errors import ConfigError
from protege.pipeline import Pipeline
from protege.store import SAMPLES, JsonlLog
from tiny import write_tiny_config

PROBLEMS = [{"q": f"What is {i} + {i} ?", "a": f"{i} + {i} = {2 * i}\n#### {2 * i}"} for i in range(3, 9)]


def write_task(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text(json.dumps({"q": "What is 2 + 2 ?", "a": "4"}) + "\n")
    # one problem repeats the test item: it is dropped when read, never trained on
    rows = PROBLEMS + [{"q": "What is 2 + 2 ?", "a": "2 + 2 = 4\n#### 4"}]
    (folder / "problems.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "task.yaml").write_text(
        "name: tinymath\nkind: math\ndescription: Solve the problem.\n"
        "seeds:\n  - {text: 'What is 1 + 1 ?', answers: ['2'], reference: '1 + 1 = 2\\n#### 2'}\n"
        "test: {path: test.jsonl, fields: {text: q, answers: a}}\n")
    return folder / "task.yaml"


def write_other_task(folder):
    """Another task whose test set holds one of the problems word for word."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text(json.dumps({"q": "What is 5 + 5 ?", "a": ["10"]}) + "\n")
    (folder / "task.yaml").write_text("name: other\nkind: qa\ndescription: d\nseeds: [{text: 'x ?', answers: [y]}]\n"
                                      "test: {path: test.jsonl, fields: {text: q, answers: a}}\n")
    return folder / "task.yaml"


def config(tmp_path, tiny_model_dir, **sections):
    task = write_task(tmp_path / "task")
    source = {"path": str(tmp_path / "task" / "problems.jsonl"), "fields": {"text": "q", "answers": "a"}}
    sections.setdefault("generate", {}).update(prompts_from=source, num_examples=5)
    sections.setdefault("curate", {}).setdefault("decontaminate_against", [str(write_other_task(tmp_path / "o"))])
    return load_config(write_tiny_config(tmp_path, tiny_model_dir, task, **sections))


def test_human_problems_are_the_items_and_no_teacher_is_loaded(tmp_path, tiny_model_dir, monkeypatch):
    import protege.synth.teacher as teacher

    def no_teacher(*_):
        raise AssertionError("prompts_from needs no teacher to write items")

    monkeypatch.setattr(teacher, "load_teacher", no_teacher)
    pipe = Pipeline(config(tmp_path, tiny_model_dir), progress=False, echo=lambda m: None)
    pipe.run("curate")
    samples = JsonlLog(pipe.stages["generate"] / SAMPLES).read()
    assert [s["id"] for s in samples] == [f"prompts-{i}" for i in range(5)]  # the first num_examples rows
    assert samples[0]["text"] == "What is 3 + 3 ?" and samples[0]["answers"] == ["6"]
    assert all(s["ok"] and s["teacher"] is None for s in samples)
    assert not any("2 + 2" in s["text"] for s in samples)  # the test twin was dropped when read
    curation = json.loads((pipe.stages["curate"] / "curation.json").read_text())
    drops = [json.loads(line) for line in (pipe.stages["curate"] / "drops.jsonl").read_text().splitlines()]
    assert [d["text"] for d in drops] == ["What is 5 + 5 ?"]  # copies the other task's test item
    assert drops[0]["reason"].startswith("contaminated_") and drops[0]["detail"]["match"] == "test-0"
    assert curation["kept"] == 4 and curation["test_reads"] == 2  # its own test set and the other task's
    reads = [json.loads(line) for line in (pipe.stages["curate"] / "test-access.jsonl").read_text().splitlines()]
    assert [r["task"] for r in reads] == ["tinymath", "other"]


def test_max_examples_trains_on_the_first_rows_only(tmp_path, tiny_model_dir):
    cfg = config(tmp_path, tiny_model_dir, train={"max_examples": 2, "include_seeds": False, "epochs": 1})
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    summary = json.loads((pipe.stages["train"] / "MANIFEST.json").read_text())["summary"]
    assert summary["examples"] == 2


def test_the_new_settings_stay_out_of_the_keys_of_runs_that_do_not_use_them(tmp_path, tiny_model_dir):
    plain = Pipeline(load_config(write_tiny_config(tmp_path, tiny_model_dir, write_task(tmp_path / "t"))))
    for stage, name in (("generate", "prompts_from"), ("curate", "decontaminate_against"),
                        ("train", "max_examples")):
        assert name not in plain._key_section(stage)


def test_an_unknown_task_to_decontaminate_against_is_refused_before_any_work(tmp_path, tiny_model_dir):
    cfg = config(tmp_path, tiny_model_dir, curate={"decontaminate_against": ["no-such-task"]})
    with pytest.raises(ConfigError, match="no-such-task"):
        Pipeline(cfg, progress=False, echo=lambda m: None).run("curate")

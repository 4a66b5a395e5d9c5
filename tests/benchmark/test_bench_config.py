"""Bench config errors: each names its field, all are reported at once, and nothing runs before they are fixed."""
import pytest
import yaml

from protege.benchmark.config import load_bench_config, parse_bench_config
from protege.benchmark.matrix import build_cells, data_jobs, short_names
from protege.benchmark.runner import run_bench
from protege.errors import ConfigError
from tiny import write_tiny_qa_task


def minimal(tmp_path, tiny_model_dir, tiny_task, **extra):
    model = f"hf:{tiny_model_dir}"
    return {"name": "b", "runs_dir": str(tmp_path / "runs"), "bench_dir": str(tmp_path / "bench"),
            "tasks": [str(tiny_task)], "teachers": [model], "students": [model],
            "base": {"eval": {"forgetting": {"tasks": [str(write_tiny_qa_task(tmp_path / "suite"))]}}}, **extra}


def problems(exc_info) -> str:
    return str(exc_info.value)


def test_unknown_and_missing_keys_are_named(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump({"name": "b", "tasks": ["trec6"], "teachers": ["x"], "studnets": ["y"],
                                    "executor": {"kind": "slurm", "cpu": 2}}))
    with pytest.raises(ConfigError) as e:
        load_bench_config(path)
    text = problems(e)
    assert str(path) in text
    for line in ["studnets: unknown key", "students: required field is missing", "executor.kind:",
                 "executor.cpu: unknown key"]:
        assert line in text, line
    with pytest.raises(ConfigError, match="file not found"):
        load_bench_config(tmp_path / "missing.yaml")


def test_cross_field_rules_are_reported_together(tmp_path, tiny_model_dir, tiny_task):
    raw = minimal(tmp_path, tiny_model_dir, tiny_task, name="my bench")
    raw["students"] = raw["students"] * 2
    raw["base"]["train"] = {"student": "hf:other", "epochs": 1}
    raw["per_task"] = {"tiny": {"generate": {"teacher": "hf:other"}}}
    raw["executor"] = {"kind": "ray", "ray_num_cpus": 1, "cpus_per_cell": 2, "memory_gb_per_cell": 0}
    with pytest.raises(ConfigError) as e:
        parse_bench_config(raw)
    text = problems(e)
    assert "6 problem(s)" in text
    for line in ["name: 'my bench' names the report folder", "students: listed more than once",
                 "base.train.student: set by the bench itself (its `students`); remove it here",
                 "per_task.tiny.generate.teacher: set by the bench itself (its `teachers`)",
                 "executor.memory_gb_per_cell must be positive", "executor.cpus_per_cell (2.0) exceeds executor.ray_num_cpus (1)"]:
        assert line in text, line


def test_every_cell_is_checked_up_front_and_a_shared_problem_reported_once(tmp_path, tiny_model_dir, tiny_task):
    raw = minimal(tmp_path, tiny_model_dir, tiny_task, methods=["sft", "kd"])
    raw["tasks"].append("no-such-task")
    raw["base"]["train"] = {"epochz": 3, "kd": {"alpha": 2}}
    raw["per_task"] = {"nope": {}}
    with pytest.raises(ConfigError) as e:
        build_cells(parse_bench_config(raw))
    text = problems(e)
    assert "tasks: 'no-such-task': no-such-task: task: no such file, and not a built-in task" in text
    assert "per_task.nope: not a task of this bench" in text
    assert text.count("train.epochz: unknown key") == 1 and "(2 cells, e.g. tiny x" in text
    assert "train.kd.alpha must be in [0, 1]" in text
    # run_bench refuses the same config before it creates anything
    with pytest.raises(ConfigError):
        run_bench(parse_bench_config(raw), progress=False, echo=lambda m: None)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "bench").exists()


def test_gate_keys_outside_the_suite_are_reported(tmp_path, tiny_model_dir, tiny_task):
    raw = minimal(tmp_path, tiny_model_dir, tiny_task)
    raw["base"]["eval"]["forgetting"]["max_drop"] = {"gsm8k": 5}
    with pytest.raises(ConfigError, match="gsm8k: not a task of the suite"):
        build_cells(parse_bench_config(raw))


def test_cells_merge_base_per_task_and_axes_and_share_data_jobs(tmp_path, tiny_model_dir, tiny_task):
    raw = minimal(tmp_path, tiny_model_dir, tiny_task, methods=["sft", "kd"])
    raw["students"] = [f"hf:{tiny_model_dir}", f"hf:{tmp_path}/other/{tiny_model_dir.name}"]
    raw["base"]["train"] = {"epochs": 2}
    raw["per_task"] = {"tiny": {"train": {"epochs": 5}, "generate": {"num_examples": 12}}}
    cells = build_cells(parse_bench_config(raw))
    assert len(cells) == 4
    assert {(c.student, c.method) for c in cells} == {(s, m) for s in raw["students"] for m in ("sft", "kd")}
    assert all(c.cfg.train.epochs == 5 and c.cfg.generate.num_examples == 12 for c in cells)
    assert all(c.cfg.runs_dir == str(tmp_path / "runs") and c.task_name == "tiny" for c in cells)
    assert len({c.stages["curate"].path for c in cells}) == 1 and len({c.stages["train"].path for c in cells}) == 4
    jobs = data_jobs(cells)
    assert len(jobs) == 1 and list(jobs[0].students) == raw["students"]
    # the two students share a folder name, so tables show their full names
    assert short_names(raw["students"]) == {s: s for s in raw["students"]}
    assert short_names(["hf:/a/l12", "openai:gpt-4o@http://x/v1", "bundled:smollm2-135m-instruct"]) == {
        "hf:/a/l12": "l12", "openai:gpt-4o@http://x/v1": "gpt-4o",
        "bundled:smollm2-135m-instruct": "smollm2-135m-instruct"}

"""Problems that used to surface after hours of generation and training are refused before the first stage."""
import pytest

from protege.config import load_config
from protege.errors import ConfigError
from protege.pipeline import Pipeline
from tiny import write_tiny_config


@pytest.mark.parametrize("sections, expected", [
    ({"train": {"student": "hf:/no/such/folder"}}, "train.student: hf:/no/such/folder: '/no/such/folder' is neither"),
    ({"train": {"student": "openai:gpt@http://127.0.0.1:9"}}, "train.student: openai:gpt@http://127.0.0.1:9 is an "
                                                              "HTTP endpoint"),
    ({"generate": {"teacher": "bundled:no-such-model"}}, "generate.teacher: bundled:no-such-model: unknown bundled"),
    ({"train": {"method": "kd", "kd": {"teacher": "hf:/missing/teacher"}}}, "train.kd.teacher: hf:/missing/teacher"),
    # an endpoint fills the KD cache, but online KD and on-policy need the teacher's weights here
    ({"train": {"method": "kd", "kd": {"teacher": "openai:t@http://127.0.0.1:9", "signal": "online"}}},
     "train.kd.teacher: openai:t@http://127.0.0.1:9 is an HTTP endpoint"),
    ({"train": {"method": "onpolicy", "onpolicy": {"teacher": "openai:t@http://127.0.0.1:9"}}},
     "train.onpolicy.teacher: openai:t@http://127.0.0.1:9 is an HTTP endpoint"),
])
def test_a_model_that_will_not_load_is_refused_before_any_stage_runs(tmp_path, tiny_model_dir, tiny_task,
                                                                      sections, expected):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task, **sections))
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    with pytest.raises(ConfigError) as err:
        pipe.run("report")
    assert expected in str(err.value)
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_reused_stages_need_no_model(tmp_path, tiny_model_dir, tiny_task):
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task))
    Pipeline(cfg, progress=False, echo=lambda m: None).run("generate")
    moved = cfg.model_copy(update={"train": cfg.train.model_copy(update={"student": "hf:/gone"})})
    Pipeline(moved, progress=False, echo=lambda m: None).run("generate")  # reused: the student is not asked for


def test_a_code_task_needs_the_eval_opt_in_before_anything_runs(tmp_path, tiny_model_dir):
    from test_answer_modes import _code_task

    task = _code_task(tmp_path / "task")
    cfg = load_config(write_tiny_config(tmp_path, tiny_model_dir, task, curate={"allow_code_execution": True},
                                        eval={"forgetting": {"tasks": []}}))
    with pytest.raises(ConfigError, match="eval.allow_code_execution"):
        Pipeline(cfg, progress=False, echo=lambda m: None).run("report")
    assert not (tmp_path / "runs").exists()

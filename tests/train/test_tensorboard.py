"""train.report_to: tensorboard writes the step log as TensorBoard scalars too, without changing the stage key."""
import pytest

from protege.config import load_config
from protege.errors import ConfigError
from protege.pipeline import Pipeline
from protege.store import JsonlLog
from tiny import write_tiny_config


def test_the_step_log_is_in_tensorboard_and_the_key_is_unchanged(tmp_path, tiny_model_dir, tiny_task):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain = load_config(write_tiny_config(tmp_path / "a", tiny_model_dir, tiny_task))
    cfg = load_config(write_tiny_config(tmp_path / "b", tiny_model_dir, tiny_task, train={"report_to": "tensorboard"}))
    assert Pipeline(plain).stages["train"].key == Pipeline(cfg).stages["train"].key
    pipe = Pipeline(cfg, progress=False, echo=lambda m: None)
    pipe.run("train")
    log = JsonlLog(pipe.stages["train"] / "train_log.jsonl").read()
    events = EventAccumulator(str(pipe.stages["train"] / "tensorboard"))
    events.Reload()
    losses = events.Scalars("train/loss")
    assert [e.step for e in losses] == [r["step"] for r in log]
    assert [e.value for e in losses] == pytest.approx([r["loss"] for r in log], rel=1e-6)
    assert "train/lr" in events.Tags()["scalars"]


def test_methods_that_run_in_trl_say_where_their_log_is(tmp_path, tiny_model_dir, tiny_task):
    with pytest.raises(ConfigError, match="train.report_to: tensorboard covers the LoRA loop"):
        load_config(write_tiny_config(tmp_path, tiny_model_dir, tiny_task,
                                      train={"report_to": "tensorboard", "method": "dpo"}))

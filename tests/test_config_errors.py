"""Bad input gets one error listing every problem, each naming its field and what to change."""
import re

import pytest
from typer.testing import CliRunner

from protege.cli import app
from protege.config import load_config
from protege.errors import ConfigError
from protege.tasks.spec import load_task
from markers import requires_data
from tiny import write_tiny_config, write_tiny_task


def test_unknown_keys_are_all_reported_with_their_field(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: trec6\ntrain:\n  epochz: 3\n  lora_rank: 8\ngenerat:\n  teacher: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    assert "train.epochz: unknown key" in msg and "generat: unknown key" in msg
    assert str(cfg) in msg and "2 problem(s)" in msg


def test_wrong_type_names_field_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochs: .*'three'"):
        load_config(None, ["train.epochs=three"])


def test_override_keeps_yaml_types():
    cfg = load_config(None, ["train.epochs=2", "eval.max_test_items=5", "curate.dedup=false"])
    assert cfg.train.epochs == 2 and cfg.eval.max_test_items == 5 and cfg.curate.dedup is False


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_missing_test_file_names_field(tiny_task):
    (tiny_task.parent / "test.jsonl").unlink()
    with pytest.raises(ConfigError, match=r"test\.path: file .*test\.jsonl does not exist"):
        load_task(str(tiny_task))


def test_bad_seed_label_names_index_and_allowed_labels(tiny_task):
    tiny_task.write_text(tiny_task.read_text().replace("{text: 'Is 3 even ?', label: 'no'}", "{text: 'Is 3 even ?', label: maybe}"))
    with pytest.raises(ConfigError) as err:
        load_task(str(tiny_task))
    assert "seeds[1].label: 'maybe' is not one of the labels ['yes', 'no']" in str(err.value)


def test_unknown_task_lists_builtins():
    with pytest.raises(ConfigError, match="built-ins are banking77, gsm8k, humaneval, mbpp, nq_open, restaurant8k"):
        load_task("no-such-task")


def test_cli_reports_config_error_and_exits_2(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: trec6\ntrain: {epochz: 3}\n")
    result = CliRunner().invoke(app, ["run", str(cfg)])
    assert result.exit_code == 2
    assert "train.epochz: unknown key" in result.output


@requires_data
def test_builtin_trec6_loads_real_splits():
    spec = load_task("trec6")
    test = spec.test_examples()
    seeds = spec.seed_examples()
    val = spec.validation_examples()
    assert len(test) == 500 and len(seeds) == 48 and len(val) == 60
    assert not {s.text for s in seeds} & {v.text for v in val}, "validation must be apart from the seeds"


def test_sizes_that_would_fail_after_hours_are_refused_at_load(tmp_path):
    from protege.config import load_config
    from protege.errors import ConfigError

    path = tmp_path / "run.yaml"
    path.write_text("generate: {batch_size: 0}\ntrain: {batch_size: 0, checkpoint_every: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    for field in ("generate.batch_size must be at least 1; got 0", "train.batch_size must be at least 1; got 0",
                  "train.checkpoint_every must be at least 1; got 0"):
        assert field in str(err.value)


def test_third_party_deprecation_notices_are_not_shown_to_users(monkeypatch):
    import warnings

    from protege.cli import quiet_third_party_warnings

    monkeypatch.delenv("PROTEGE_SHOW_WARNINGS", raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party_warnings()
        warnings.warn_explicit("`past_key_values` is deprecated", FutureWarning, "x.py", 1,
                               module="transformers.utils.output_capturing")
        warnings.warn_explicit("a protege warning", UserWarning, "y.py", 1, module="protege.pipeline")
    assert [str(w.message) for w in seen] == ["a protege warning"]


@pytest.mark.parametrize("override, expected", [
    ("train.rl.num_generations=1", "train.rl.num_generations must be at least 2"),
    ("train.rl.prompts_per_step=0", "train.rl.prompts_per_step must be at least 1"),
    ("train.dpo.samples_per_prompt=1", "train.dpo.samples_per_prompt must be at least 2"),
])
def test_rl_and_dpo_sizes_that_cannot_work_are_refused_up_front(tmp_path, override, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(write_tiny_config(tmp_path, tmp_path / "model", write_tiny_task(tmp_path / "task")), [override])


def test_dpo_without_pairs_names_what_to_change(tmp_path):
    from protege.config import DPOConfig
    from protege.train.dpo import run_dpo

    with pytest.raises(ConfigError, match="no preference pairs.*samples_per_prompt"):
        run_dpo(None, DPOConfig(), tmp_path, None, [])

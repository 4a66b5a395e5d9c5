"""The kd sweep's kept rows (--rows FILE.json): a later session reads back only rows measured under its settings.

    .venv/bin/python -m pytest tests/test_kd_sweep_rows.py -q
"""
import json

import pytest

from protege.lab.experiments.kd_sweep import kept_results, main, sweep_settings


def settings(**changed):
    import argparse

    args = argparse.Namespace(family="qwen", train_blocks=64, held_out_blocks=48, block_tokens=128, alphas=[0, 1],
                              work="runs/x", out="doc.md", rows="rows.json", seed=0)
    vars(args).update(changed)
    return sweep_settings(args)


def test_settings_leave_out_the_alphas_and_the_paths():
    assert settings() == settings(alphas=[0.2], work="elsewhere", out=None, rows=None)
    assert settings() != settings(train_blocks=32)


def test_rows_kept_under_the_same_settings_come_back(tmp_path):
    path = tmp_path / "rows.json"
    assert kept_results(path, settings()) == {}
    path.write_text(json.dumps({"settings": settings(), "results": {"alpha 0 (no teacher)": {"nll": 3.5}}}))
    assert kept_results(path, settings()) == {"alpha 0 (no teacher)": {"nll": 3.5}}


def test_rows_kept_under_other_settings_are_refused_naming_the_file_and_the_field(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"settings": settings(), "results": {"strong alpha 1": {"nll": 3.4}}}))
    with pytest.raises(SystemExit) as err:
        kept_results(path, settings(train_blocks=128))
    assert str(path) in str(err.value) and "train_blocks: kept 64, now 128" in str(err.value)


def test_the_command_refuses_before_loading_any_model(tmp_path, monkeypatch):
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"settings": {"family": "smollm2"}, "results": {}}))
    import protege.lab.experiments.kd_sweep as kd

    monkeypatch.setattr(kd, "family_models", lambda args: pytest.fail("loaded a model before checking --rows"))
    with pytest.raises(SystemExit, match="other settings"):
        main(["--family", "qwen", "--rows", str(path)])


def test_the_table_orders_rows_by_teacher_then_alpha_whatever_order_they_ran_in():
    from protege.lab.experiments.kd_sweep import row_order

    ran = ["weak alpha 0.5", "strong alpha 1", "alpha 0 (no teacher)", "strong alpha 0.2", "weak teacher",
           "student before training", "weak alpha 0.2", "strong teacher", "strong alpha 0.5"]
    assert sorted(ran, key=row_order) == [
        "student before training", "strong teacher", "weak teacher", "alpha 0 (no teacher)", "strong alpha 0.2",
        "strong alpha 0.5", "strong alpha 1", "weak alpha 0.2", "weak alpha 0.5"]

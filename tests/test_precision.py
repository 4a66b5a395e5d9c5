"""The precision setting: what auto resolves to on each kind of CPU, where the setting comes from (run config,
command line, environment), that stages key on the resolved value without orphaning fp32 runs made before the
setting existed, and that manifests and reports say which precision a result was computed in."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from protege.config import load_config
from protege.models import precision as P
from protege.pipeline import Pipeline
from tiny import write_tiny_config

CPUS = {"AVX2 only": {"avx2": True, "avx512_bf16": False, "amx_bf16": False},
        "AVX-512 BF16": {"avx2": True, "avx512_bf16": True, "amx_bf16": False},
        "AMX": {"avx2": True, "avx512_bf16": True, "amx_bf16": True}}


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be one of the three CPUs this project runs on."""
    def be(name):
        monkeypatch.setattr(P, "cpu_features", lambda: CPUS[name])
    monkeypatch.delenv(P.ENV, raising=False)
    return be


@pytest.mark.parametrize("name,auto", [("AVX2 only", "fp32"), ("AVX-512 BF16", "bf16"), ("AMX", "bf16")])
def test_auto_picks_bf16_only_where_the_cpu_multiplies_bf16_natively(cpu, name, auto):
    cpu(name)
    assert P.resolve_precision("auto") == P.resolve_precision() == auto
    assert P.resolve_precision("fp32") == "fp32" and P.resolve_precision("bf16") == "bf16"  # asked for: obeyed


def test_the_innermost_setting_wins_and_a_bad_one_names_where_it_came_from(cpu, monkeypatch):
    cpu("AMX")
    monkeypatch.setenv(P.ENV, "fp32")
    assert P.resolve_precision() == "fp32"
    with P.use_precision("bf16"):
        assert P.resolve_precision() == "bf16"
        with P.use_precision(None):  # None leaves the one in force
            assert P.resolve_precision() == "bf16"
    assert P.resolve_precision() == "fp32"
    monkeypatch.setenv(P.ENV, "fp16")
    with pytest.raises(ValueError, match="PROTEGE_PRECISION.*auto, fp32, bf16.*'fp16'"):
        P.resolve_precision()


def test_a_model_pinned_to_a_precision_ignores_the_setting_in_force(tiny_model_dir, cpu):
    import torch

    from protege.models.local import LocalLM

    cpu("AVX2 only")
    pinned, free = (LocalLM.from_dir(tiny_model_dir, precision=p) for p in ("bf16", None))
    assert pinned.resolved_precision() == "bf16" and free.resolved_precision() == "fp32"
    with pinned.autocast():
        assert torch.is_autocast_enabled("cpu")
    with P.use_precision("bf16"), free.autocast():
        assert torch.is_autocast_enabled("cpu")
    with free.autocast():
        assert not torch.is_autocast_enabled("cpu")


def _pipe(tmp_path, tiny_model_dir, tiny_task, **top):
    path = write_tiny_config(tmp_path, tiny_model_dir, tiny_task)
    raw = yaml.safe_load(path.read_text())
    for name, value in top.items():  # a section is merged into the tiny config's
        raw[name] = {**raw[name], **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(raw))
    return Pipeline(load_config(path), progress=False, echo=lambda m: None)


def test_stages_that_run_a_local_model_key_on_the_resolved_precision(tmp_path, tiny_model_dir, tiny_task, cpu):
    cpu("AVX-512 BF16")
    auto = _pipe(tmp_path, tiny_model_dir, tiny_task)  # auto on a bf16 CPU
    bf16 = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="bf16")
    fp32 = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="fp32")
    cpu("AVX2 only")
    avx2 = _pipe(tmp_path, tiny_model_dir, tiny_task)  # auto on an AVX2 CPU: fp32
    keys = {n: {s: p.stages[s].key for s in ("generate", "train", "eval")}
            for n, p in (("auto", auto), ("bf16", bf16), ("fp32", fp32), ("avx2", avx2))}
    assert keys["auto"] == keys["bf16"] and keys["fp32"] == keys["avx2"]
    assert all(keys["bf16"][s] != keys["fp32"][s] for s in ("generate", "train", "eval"))
    # fp32 is the value every run made before the setting had: it stays out of the key, so those runs keep theirs
    assert "precision" not in fp32._key_section("train") and bf16._key_section("train")["precision"] == "bf16"


def test_an_http_teacher_does_not_regenerate_when_only_the_precision_changes(tmp_path, tiny_model_dir, tiny_task,
                                                                            cpu):
    cpu("AMX")
    teacher = {"teacher": "openai:m@http://127.0.0.1:9/v1"}
    a = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="bf16", generate=teacher)
    b = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="fp32", generate=teacher)
    assert a.stages["generate"].key == b.stages["generate"].key
    assert a.stages["train"].key != b.stages["train"].key


@pytest.mark.precision("fp32")
def test_every_model_stage_records_its_precision_and_the_report_shows_it(tmp_path, tiny_model_dir, tiny_task):
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task)
    pipe.run("report")
    for stage in ("generate", "train", "eval"):
        recorded = yaml.safe_load((pipe.stages[stage] / "config.yaml").read_text())["precision"]
        assert recorded["setting"] == "fp32" and recorded["resolved"] == "fp32" and recorded["cpu"]
    results = json.loads((pipe.stages["eval"] / "results.json").read_text())
    assert results["precision"]["resolved"] == "fp32"
    assert "Precision: fp32 (setting fp32) on cpu, CPU " in (pipe.stages["report"] / "report.md").read_text()


def _without_setting() -> dict:
    return {k: v for k, v in os.environ.items() if k != P.ENV}


def test_the_command_line_option_reaches_the_models_and_refuses_a_typo():
    code = ("from typer.testing import CliRunner; from protege.cli import app; import os; "
            "r = CliRunner().invoke(app, ['--precision', '{}', 'student', '--help']); "
            "print(r.exit_code, os.environ.get('PROTEGE_PRECISION'), ' '.join(r.output.replace('│', ' ').split()))")
    ok = subprocess.run([sys.executable, "-c", code.format("bf16")], capture_output=True, text=True,
                        env=_without_setting())
    assert ok.stdout.startswith("0 bf16"), ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-c", code.format("fp16")], capture_output=True, text=True,
                         env=_without_setting())
    # the choices come from the config's Literal (protege/choices.py), so the CLI names the same three
    assert bad.stdout.startswith("2 None") and "'fp16' is not one of 'auto', 'fp32', 'bf16'" in bad.stdout, bad.stdout


def test_the_machine_summary_names_the_cpu_and_what_auto_means():
    run = [sys.executable, "-m", "protege.models.precision"]
    auto = subprocess.run(run, capture_output=True, text=True, env=_without_setting())
    assert auto.returncode == 0 and "precision auto resolves to" in auto.stdout and "CPU" in auto.stdout
    forced = subprocess.run(run, capture_output=True, text=True, env={**_without_setting(), P.ENV: "fp32"})
    assert "fp32 in force (PROTEGE_PRECISION)" in forced.stdout


def test_rows_shared_between_eval_stages_are_not_shared_across_precisions(tmp_path, tiny_task, cpu, monkeypatch):
    """A baseline or teacher row computed in bf16 is not reused by an fp32 run (evaluate/shared_rows.py); an
    endpoint's rows are, since its precision is the server's."""
    from protege.config import EvalConfig
    from protege.evaluate.shared_rows import SharedRow
    from protege.tasks.spec import load_task

    cpu("AVX2 only")
    spec = load_task(str(tiny_task))

    def path(model, setting):
        monkeypatch.setenv(P.ENV, setting)
        return SharedRow(tmp_path, spec, model, [], EvalConfig(), "likelihood").path

    assert path("hf:m", "bf16") != path("hf:m", "fp32") == path("hf:m", "auto")  # auto is fp32 on AVX2
    assert path("openai:m@http://127.0.0.1:9/v1", "bf16") == path("openai:m@http://127.0.0.1:9/v1", "fp32")


def test_a_released_model_is_forgotten_and_loads_again(tiny_model_dir):
    """KD frees its teacher once the cache is written: the resolver no longer holds it."""
    from protege.models import resolve

    name = f"hf:{tiny_model_dir}"
    first = resolve.load_lm(name)
    assert resolve.load_lm(name) is first
    assert resolve.release(name) == 1 and resolve.release(name) == 0
    assert resolve.load_lm(name) is not first


def test_generate_precision_keys_only_the_teachers_stages(tmp_path, tiny_model_dir, tiny_task, cpu):
    cpu("AVX-512 BF16")
    fp32 = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="fp32")
    bf16 = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="bf16")
    mixed = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="fp32", generate={"precision": "bf16"})
    back = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="bf16", generate={"precision": "fp32"})
    # the teacher's data is the bf16 run's; the student's stages compute in fp32 on it
    assert mixed.stages["generate"].key == bf16.stages["generate"].key != fp32.stages["generate"].key
    assert "precision" not in mixed._key_section("train") and "precision" not in mixed._key_section("eval")
    assert mixed.stages["train"].key not in (fp32.stages["train"].key, bf16.stages["train"].key)
    # fp32 teacher data in a bf16 run is the fp32 run's data: an fp32 run's finished generate stage is reused
    assert back.stages["generate"].key == fp32.stages["generate"].key
    assert back._key_section("train")["precision"] == "bf16"


def test_generate_precision_is_what_the_teacher_stage_computes_in(tmp_path, tiny_model_dir, tiny_task, monkeypatch):
    seen = {}
    for name in ("_generate", "_train"):
        original = getattr(Pipeline, name)

        def spy(self, stage, _original=original, _name=name):
            seen[_name] = P.requested()
            return _original(self, stage)
        monkeypatch.setattr(Pipeline, name, spy)
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task, precision="fp32", generate={"precision": "bf16"})
    pipe.run("train")
    assert seen == {"_generate": "bf16", "_train": "fp32"}
    recorded = {s: yaml.safe_load((pipe.stages[s] / "config.yaml").read_text())["precision"]["setting"]
                for s in ("generate", "train")}
    assert recorded == {"generate": "bf16", "train": "fp32"}


def test_a_stage_in_bf16_on_a_cpu_that_emulates_it_says_so_and_what_to_change(tmp_path, tiny_model_dir, tiny_task,
                                                                               cpu):
    assert P.slow_bf16_notice("bf16", "cpu") is not None or P.bf16_fast("cpu")
    cpu("AVX2 only")
    assert "PROTEGE_PRECISION=fp32" in P.slow_bf16_notice("bf16", "cpu")
    assert P.slow_bf16_notice("fp32", "cpu") is None and P.slow_bf16_notice("auto", "cpu") is None
    pipe = _pipe(tmp_path, tiny_model_dir, tiny_task, generate={"precision": "bf16", "num_examples": 4})
    said = []
    pipe.echo = said.append
    pipe.run("curate")
    notices = [line for line in said if "emulated" in line]
    assert len(notices) == 1 and notices[0].startswith("[generate] bf16 is emulated on this CPU (AVX2")
    cpu("AVX-512 BF16")
    assert P.slow_bf16_notice("bf16", "cpu") is None

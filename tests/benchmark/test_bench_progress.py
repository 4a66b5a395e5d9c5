"""`protege bench --status` / `--stage-dirs` (benchmark/progress.py) on a tiny bench run to the end, then broken in
known places: each stage's state, the seconds read from its attempts, the folders worth packing, and that asking
runs and writes nothing."""
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from protege.benchmark.config import parse_bench_config
from protege.benchmark.matrix import build_cells
from protege.benchmark.progress import BEGUN, DONE, NOT_NEEDED, TODO, bench_progress, render_progress, stage_dirs
from protege.benchmark.runner import run_bench
from protege.cli import app
from protege.store import MANIFEST
from tiny import build_tiny_model, write_tiny_task


def bench_dict(root: Path, assets: dict) -> dict:
    """One task x one teacher x two students x sft, small enough to run in seconds."""
    return {"name": "p", "runs_dir": str(root / "runs"), "bench_dir": str(root / "bench"),
            "tasks": [str(assets["tiny"])], "teachers": [f"hf:{assets['m0']}"],
            "students": [f"hf:{assets['m0']}", f"hf:{assets['m1']}"],
            "base": {"generate": {"num_examples": 8, "batch_size": 4, "max_new_tokens": 6},
                     "curate": {"min_chars": 1},
                     "train": {"epochs": 1, "batch_size": 4, "lora_rank": 4, "lora_alpha": 8, "lr": 1e-2},
                     "eval": {"bootstrap_resamples": 50, "forgetting": {"tasks": []}}},
            "rank_resamples": 100}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    assets = {"m0": build_tiny_model(root / "m0", seed=0), "m1": build_tiny_model(root / "m1", seed=1),
              "tiny": write_tiny_task(root / "tiny")}
    run_bench(parse_bench_config(bench_dict(root, assets)), progress=False, echo=lambda m: None)
    return {"root": root, "assets": assets}


def progress_of(root: Path, assets: dict) -> dict:
    return bench_progress(build_cells(parse_bench_config(bench_dict(root, assets))))


def attempt_seconds(stage: Path) -> float:
    """Read here, not through store.closed_attempts: one process ran the stage, from its attempt's start to the
    manifest, written last."""
    (attempt,) = json.loads((stage / "attempts.json").read_text())
    return round((stage / MANIFEST).stat().st_mtime - attempt["began"], 1)


def test_a_finished_bench_reads_done_everywhere_with_each_stages_measured_seconds(finished):
    progress = progress_of(finished["root"], finished["assets"])
    (data,), cells = progress["data"], progress["cells"]
    assert [s.stage for s in data.stages] == ["generate", "curate", "capacity m0", "capacity m1"]
    assert [[s.stage for s in c.stages] for c in cells] == [["train", "eval", "report"]] * 2
    every = [s for rows in progress.values() for r in rows for s in r.stages]
    assert {s.state for s in every} == {DONE}
    for s in every:
        assert s.seconds == attempt_seconds(s.path), s
    # training and evaluating load models and take seconds; a tiny teacher writing 8 items (its model already
    # loaded in this process) or curating them can round to 0.0 s
    assert all(s.seconds > 0 for s in every if s.stage in ("train", "eval"))
    text = render_progress(progress)
    assert "2 of 2 cells finished; stages: 10 done, 0 begun, 0 to do, 0 not needed" in text
    assert f"{sum(s.seconds for s in every):,.0f} s" in text
    assert sorted(stage_dirs(progress)) == sorted({s.path for s in every})


def test_broken_stages_read_begun_to_do_and_not_needed_and_only_useful_folders_are_listed(finished, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(finished["root"] / "runs", root / "runs")
    before = progress_of(root, finished["assets"])
    (data,), (first, second) = before["data"], before["cells"]
    generate, first_train, first_report = data.stages[0].path, first.stages[0].path, first.stages[2].path
    second_eval, second_report = second.stages[1].path, second.stages[2].path
    (generate / MANIFEST).unlink()  # curate finished after it: the run reads curate, never generate again
    (first_train / MANIFEST).unlink()  # its evaluation finished: a carried eval read without its training
    shutil.rmtree(first_report)
    (second_eval / MANIFEST).unlink()  # cut short while evaluating
    shutil.rmtree(second_report)

    after = progress_of(root, finished["assets"])
    (data,), (first, second) = after["data"], after["cells"]
    assert [s.state for s in data.stages] == [NOT_NEEDED, DONE, DONE, DONE]
    assert [s.state for s in first.stages] == [NOT_NEEDED, DONE, TODO]
    assert [s.state for s in second.stages] == [DONE, BEGUN, TODO]
    assert first.stages[2].seconds == 0 and second.stages[1].seconds > 0
    listed = set(stage_dirs(after))
    assert second_eval in listed and first.stages[1].path in listed
    assert not listed & {generate, first_train, first_report, second_report}
    assert "0 of 2 cells finished; stages: 5 done, 1 begun, 2 to do, 2 not needed" in render_progress(after)


def test_the_cli_prints_status_and_folders_and_runs_nothing(finished, tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump(bench_dict(finished["root"], finished["assets"])))
    runs = finished["root"] / "runs"
    before = sorted(p for p in runs.rglob("*"))
    status = CliRunner().invoke(app, ["bench", str(config), "--status"])
    assert status.exit_code == 0, status.output
    assert "| task | teacher | student | method | train | eval | report |" in status.output
    assert "2 of 2 cells finished" in status.output
    folders = CliRunner().invoke(app, ["bench", str(config), "--stage-dirs"])
    assert folders.exit_code == 0, folders.output
    listed = folders.output.split()
    assert len(listed) == 10 and all(Path(p).is_dir() for p in listed)
    assert sorted(p for p in runs.rglob("*")) == before


@pytest.mark.parametrize("mode", ["items", "answers", "cooperative"])
def test_the_answers_stage_is_listed_where_the_pipeline_runs_one(tmp_path, tiny_model_dir, mode):
    from test_answer_modes import _code_task

    raw = bench_dict(tmp_path, {"tiny": _code_task(tmp_path / "code"), "m0": tiny_model_dir, "m1": tiny_model_dir})
    raw["students"] = raw["students"][:1]
    raw["base"]["generate"]["mode"] = mode
    raw["base"]["curate"]["allow_code_execution"] = True
    raw["base"]["eval"]["allow_code_execution"] = True
    (data,) = bench_progress(build_cells(parse_bench_config(raw)))["data"]
    expected = ["generate", "curate"] if mode == "items" else ["generate", "answers", "curate"]
    assert [s.stage for s in data.stages] == expected + ["capacity " + Path(tiny_model_dir).name]
    assert {s.state for s in data.stages} == {TODO}


def test_a_begun_generate_stage_says_how_many_items_are_written_and_about_how_long_the_rest_takes(finished, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(finished["root"] / "runs", root / "runs")
    (data,) = progress_of(root, finished["assets"])["data"]
    generate, curate = data.stages[0].path, data.stages[1].path
    (generate / MANIFEST).unlink()
    shutil.rmtree(curate)  # killed while writing items: nothing after generate has run
    lines = (generate / "samples.jsonl").read_text().splitlines(keepends=True)
    (generate / "samples.jsonl").write_text("".join(lines[:3]))
    (data,) = progress_of(root, finished["assets"])["data"]
    state = data.stages[0]
    assert (state.state, state.items) == (BEGUN, (3, 8))  # base.generate.num_examples
    left = state.seconds / 3 * 5 / 3600
    assert f"begun, {state.seconds:,.0f} s, 3 of 8 items, about {left:.1f} h left at this rate" in render_progress(
        progress_of(root, finished["assets"]))
    assert all(s.items is None for s in data.stages[1:])  # only a begun item-writing stage counts items


def test_a_begun_answers_stage_counts_against_the_well_formed_items_it_answers(tmp_path):
    from protege.benchmark.progress import chain_states
    from protege.store import StageDir

    generate, answers = (StageDir(tmp_path, "t", stage, "k") for stage in ("generate", "answers"))
    generate.start({"generate": {"num_examples": 4}})
    (generate / "samples.jsonl").write_text("".join(json.dumps({"id": f"g{i}", "ok": i != 3}) + "\n" for i in range(4)))
    generate.finish()
    answers.start({})
    (answers / "answers.jsonl").write_text(json.dumps({"id": "g0"}) + "\n" + json.dumps({"id": "g1"}) + "\n")
    states = chain_states([generate, answers])
    assert [s.state for s in states] == [DONE, BEGUN]
    assert states[0].items is None and states[1].items == (2, 3)  # g3 is malformed: nothing to answer

"""`protege bench --only FIELD=VALUE` (benchmark/selection.py): a slice of the matrix is run, the rest left
untouched, and the report still covers every finished cell; a term that names nothing is refused with the
choices."""
import pytest
import yaml
from typer.testing import CliRunner

from protege.benchmark.config import parse_bench_config
from protege.benchmark.matrix import build_cells
from protege.benchmark.runner import run_bench
from protege.benchmark.selection import select_cells
from protege.cli import app
from protege.errors import ConfigError
from test_bench_progress import bench_dict
from tiny import build_tiny_model, write_tiny_task


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    return {"root": root, "m0": build_tiny_model(root / "m0", seed=0), "m1": build_tiny_model(root / "m1", seed=1),
            "tiny": write_tiny_task(root / "tiny")}


def cells_of(assets):
    return build_cells(parse_bench_config(bench_dict(assets["root"], assets)))


def test_terms_pick_cells_by_short_or_full_name_and_all_must_hold(assets):
    cells = cells_of(assets)
    assert select_cells(cells, []) == cells
    (m1,) = select_cells(cells, ["student=m1"])
    assert m1.student.endswith("m1") and select_cells(cells, [f"student=hf:{assets['m1']}"]) == [m1]
    assert select_cells(cells, ["student=m0", "student=m1"]) == cells  # one field's values are alternatives
    assert select_cells(cells, ["student=m1", "method=sft", "task=tiny"]) == [m1]  # different fields all hold


def test_a_term_that_names_nothing_is_refused_with_the_choices(assets):
    cells = cells_of(assets)
    with pytest.raises(ConfigError, match=r"student=m9: no cell of this bench has it; choose one of m0, m1"):
        select_cells(cells, ["student=m9"])
    with pytest.raises(ConfigError, match=r"'size' is not a field to select on; choose one of task, teacher"):
        select_cells(cells, ["size=small"])
    with pytest.raises(ConfigError, match=r"write FIELD=VALUE"):
        select_cells(cells, ["mbpp"])


def test_only_runs_the_slice_and_reports_every_finished_cell(assets):
    messages = []
    config = parse_bench_config(bench_dict(assets["root"], assets))
    out = run_bench(config, progress=False, echo=messages.append, only=["student=m0"])
    done = {c.student.rsplit("/", 1)[-1]: c.stages["report"].complete for c in build_cells(config)}
    assert done == {"m0": True, "m1": False}
    assert "[bench] --only: 1 of the 2 cells" in messages
    unfinished = (out / "report.md").read_text().split("## Cells not finished", 1)[1].split("\n## ", 1)[0]
    assert "| tiny | m0 | m1 | sft | not run yet |" in unfinished  # the report covers the whole matrix
    assert "| tiny | m0 | m0 |" not in unfinished


def test_the_command_line_refuses_a_bad_term_before_running_anything(assets, tmp_path):
    config = tmp_path / "bench.yaml"
    config.write_text(yaml.safe_dump(bench_dict(tmp_path, assets)))
    result = CliRunner().invoke(app, ["bench", str(config), "--only", "teacher=m9"])
    assert result.exit_code == 2 and "teacher=m9: no cell of this bench has it" in result.output
    assert not (tmp_path / "runs").exists()
    shown = CliRunner().invoke(app, ["bench", str(config), "--only", "student=m1", "--status"])
    assert shown.exit_code == 0 and "capacity m1 |" in shown.output and "capacity m0" not in shown.output
    assert "| tiny | m0 | m1 | sft | to do |" in shown.output and "0 of 1 cells finished" in shown.output

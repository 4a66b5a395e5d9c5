"""A test prompt longer than the model's context stops `protege eval` before the first item, naming the item,
its length, the context and the ways out (a model past its positions gives scores that are not its own)."""
import json

import pytest
from typer.testing import CliRunner

from protege.cli import app
from tiny import write_tiny_qa_task, write_tiny_task


def _lengthen(task_yaml, row: int, field: str):
    test = task_yaml.parent / "test.jsonl"
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    rows[row][field] = "Is Paris a location . " * 300  # ~1,500 tokens; the tiny model's context is 1,024
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("writer, field, scoring", [(write_tiny_task, "question", "likelihood"),
                                                    (write_tiny_task, "question", "generate"),
                                                    (write_tiny_qa_task, "q", "generate")])
def test_a_prompt_past_the_context_is_refused_by_name(tiny_model_dir, tmp_path, writer, field, scoring):
    task = writer(tmp_path / "task", n_test=3)
    args = ["eval", "--model", f"hf:{tiny_model_dir}", "--task", str(task), "--scoring", scoring, "--runs-dir"]
    assert CliRunner().invoke(app, args + [str(tmp_path / "fits")]).exit_code == 0  # every prompt fits
    _lengthen(task, 1, field)
    result = CliRunner().invoke(app, args + [str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "1 of 3 test prompts do not fit" in result.output and "context of 1024 tokens" in result.output
    assert "test-1 (" in result.output and "longer context" in result.output
    assert not any(p.read_text() for p in (tmp_path / "runs").rglob("samples.jsonl"))  # nothing was scored

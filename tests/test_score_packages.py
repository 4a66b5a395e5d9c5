"""`protege score` on a code task whose solutions import numpy: hidden by default (import errors, named in the
summary's warning), visible with --package or the spec's `packages:`; --records writes why each item failed."""
import json

from typer.testing import CliRunner

from protege.cli import app

SPEC = ("name: arrays\nkind: code\ndescription: Write the function with numpy.\n"
        "seeds:\n  - {text: 'Write total(xs).', tests: 'assert total([1]) == 1', "
        "reference: 'def total(xs):\\n    return sum(xs)'}\n"
        "test: {path: test.jsonl, fields: {text: q, tests: t}}\n")
TESTS = [("Write mean(xs).", "assert mean([1, 2, 3]) == 2"), ("Write top(xs).", "assert top([3, 9, 1]) == 9"),
         ("Write nothing.", "assert True")]
PREDICTIONS = ["import numpy as np\ndef mean(xs):\n    return float(np.mean(xs))",
               "import numpy as np\ndef top(xs):\n    return int(np.max(xs)) + 1",  # wrong on purpose
               "def f(:\n    pass"]


def _task(folder, packages=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text("".join(json.dumps({"q": q, "t": t}) + "\n" for q, t in TESTS))
    spec = folder / "arrays.yaml"
    spec.write_text(SPEC + (f"packages: {packages}\n" if packages else ""))
    preds = folder / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": f"test-{i}", "prediction": p}) + "\n"
                             for i, p in enumerate(PREDICTIONS)))
    return spec, preds


def _score(*args):
    result = CliRunner().invoke(app, ["score", *map(str, args), "--allow-code-execution"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_hidden_packages_fail_as_import_errors_and_the_summary_says_so(tmp_path):
    spec, preds = _task(tmp_path)
    summary = _score(preds, "--task", spec, "--records", tmp_path / "records.jsonl")
    assert summary["pass@1"] == 0
    assert summary["reasons"] == {"import_error": 2, "syntax_error": 1}
    assert "numpy (2)" in summary["warning"] and "packages: [numpy]" in summary["warning"]
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert [(r["id"], r["status"], r["reason"]) for r in records] == [
        ("test-0", "failed", "import_error"), ("test-1", "failed", "import_error"), ("test-2", "failed", "syntax_error")]
    assert all(r["seconds"] > 0 for r in records)


def test_package_option_and_spec_field_expose_numpy(tmp_path):
    spec, preds = _task(tmp_path / "option")
    by_option = _score(preds, "--task", spec, "--package", "numpy", "--records", tmp_path / "records.jsonl")
    spec, preds = _task(tmp_path / "field", packages="[numpy]")
    by_field = _score(preds, "--task", spec)
    for summary in (by_option, by_field):
        assert summary["pass@1"] == 1 / 3
        assert summary["reasons"] == {"assertion": 1, "syntax_error": 1}
        assert "warning" not in summary
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert reasons == ["passed", "assertion", "syntax_error"]


def test_packages_on_a_task_that_runs_no_code_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["score", str(tmp_path / "p.jsonl"), "--task", "trec6", "--package", "numpy"])
    assert result.exit_code == 2 and "runs no code" in result.output


def test_records_in_an_unwritable_place_is_a_clear_error(tmp_path):
    spec, preds = _task(tmp_path)
    result = CliRunner().invoke(app, ["score", str(preds), "--task", str(spec), "--allow-code-execution",
                                      "--records", str(tmp_path / "test.jsonl" / "records.jsonl")])
    assert result.exit_code == 2 and "give --records a path" in result.output

"""experiments/doc_table.py: a rerun experiment rewrites its table and keeps the prose around it."""
from protege.lab.experiments.doc_table import END, START, write_table


def test_a_new_doc_gets_the_table_inside_markers_and_a_rerun_keeps_the_prose(tmp_path):
    doc = tmp_path / "exp.md"
    write_table(doc, "| a |\n|---|\n| 1 |\n")
    assert doc.read_text() == f"{START}\n| a |\n|---|\n| 1 |\n{END}\n"
    doc.write_text("# Title\n\nWhy we ran it.\n\n" + doc.read_text() + "\nWhat it means.\n")
    write_table(doc, "| a |\n|---|\n| 2 |")
    text = doc.read_text()
    assert text == f"# Title\n\nWhy we ran it.\n\n{START}\n| a |\n|---|\n| 2 |\n{END}\n\nWhat it means.\n"


def test_a_doc_without_markers_keeps_its_text_and_gets_the_table_appended():
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        doc = pathlib.Path(tmp) / "old.md"
        doc.write_text("an old table, no markers\n")
        write_table(doc, "| b |")
        assert doc.read_text() == f"an old table, no markers\n\n{START}\n| b |\n{END}\n"


def test_a_named_table_is_a_second_table_and_neither_rewrites_the_other(tmp_path):
    doc = tmp_path / "exp.md"
    write_table(doc, "| first |")
    write_table(doc, "| second |", name="qwen")
    write_table(doc, "| first, rerun |")
    write_table(doc, "| second, rerun |", name="qwen")
    text = doc.read_text()
    assert text.count("| first, rerun |") == 1 and text.count("| second, rerun |") == 1
    assert "| first |" not in text and "| second |" not in text
    assert text.index("first, rerun") < text.index("protege:table:qwen:start") < text.index("second, rerun")


def test_a_phased_command_runs_its_phases_and_keeps_the_measured_values(tmp_path):
    import json

    from protege.lab.experiments.doc_table import phased_command

    calls = []

    def arms(config, overrides, data, run):
        calls.append((config, overrides, run))
        return [{"name": "a", "cfg": object(), "spec": object(), "eval": {"rows": [{"row": "fine-tuned"}]}, "n": 3},
                {"name": "b", "pending": True}]

    def table(data, results, command):
        return f"{command}: {len(results)} arms"

    doc = tmp_path / "exp.md"
    phased_command(["c.yaml", "--out", str(doc), "--phase", "data", "x=1"], "Doc.", "m", lambda c, o, run: {"d": o},
                   arms, table)
    assert calls == [] and "python -m m c.yaml --out" in doc.read_text() and ": 0 arms" in doc.read_text()
    phased_command(["c.yaml", "--report-only", "--out", str(doc), "x=1"], "Doc.", "m", lambda c, o, run: {"d": o}, arms,
                   table, data_record=lambda d: {"kept": d["d"]})
    assert calls == [("c.yaml", ["x=1"], False)]
    assert f"python -m m c.yaml --out {doc} x=1: 2 arms" in doc.read_text()  # the command without --report-only
    kept = json.loads(doc.with_suffix(".json").read_text())
    assert kept == {"data": {"kept": ["x=1"]}, "arms": [{"name": "a", "n": 3, "rows": [{"row": "fine-tuned"}]},
                                                       {"name": "b", "pending": True}]}
    # --table NAME: a second table in the same doc and its own .json twin; the first table is kept as it was
    phased_command(["c.yaml", "--report-only", "--out", str(doc), "--table", "qwen", "x=2"], "Doc.", "m",
                   lambda c, o, run: {"d": o}, arms, table)
    text = doc.read_text()
    assert f"--out {doc} x=1: 2 arms" in text and "protege:table:qwen:start" in text
    assert text.index("protege:table:qwen:start") < text.index(f"--table qwen x=2: 2 arms")
    assert json.loads((tmp_path / "exp-qwen.json").read_text())["data"] == {"d": ["x=2"]}
    assert json.loads(doc.with_suffix(".json").read_text())["data"] == {"kept": ["x=1"]}


def test_a_phased_commands_options_reach_its_data_phase_and_stay_in_the_command(tmp_path):
    asked = []

    def data_phase(config, overrides, run, without):
        asked.append(without)
        return {}

    from protege.lab.experiments.doc_table import phased_command

    doc = tmp_path / "exp.md"
    for argv in (["c.yaml", "--without", "trained", "--out", str(doc), "x=1"], ["c.yaml", "--out", str(doc)]):
        phased_command(argv, "Doc.", "m", data_phase, lambda *a, **k: [], lambda d, r, command: command,
                       options={"without": ""})
    assert asked == ["trained", ""]
    phased_command(["c.yaml", "--without", "trained", "--out", str(doc), "x=1"], "Doc.", "m", data_phase,
                   lambda *a, **k: [], lambda d, r, command: command, options={"without": ""})
    assert f"python -m m c.yaml --without trained --out {doc} x=1" in doc.read_text()


def test_a_report_only_run_refuses_an_unfinished_data_phase_and_writes_nothing(tmp_path, capsys):
    """--report-only reads: where the data phase is unfinished it says so and exits 2, and the doc is untouched."""
    import pytest

    from protege.lab.experiments.doc_table import Unfinished, phased_command

    asked = []

    def data_phase(config, overrides, run):
        asked.append(run)
        if not run:
            raise Unfinished("teacher-only: answers, curate not finished (runs/mbpp/answers-x)")
        return {}

    doc = tmp_path / "exp.md"
    doc.write_text("prose\n")
    with pytest.raises(SystemExit) as stop:
        phased_command(["c.yaml", "--report-only", "--out", str(doc)], "Doc.", "m", data_phase,
                       lambda *a, **k: [], lambda *a: "table")
    assert stop.value.code == 2 and asked == [False] and doc.read_text() == "prose\n"
    err = capsys.readouterr().err
    assert "answers, curate not finished (runs/mbpp/answers-x)" in err and "without --report-only" in err

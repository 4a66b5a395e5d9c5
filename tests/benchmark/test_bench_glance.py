"""The bench report's "At a glance" table: every student x teacher cell of a task on one row per student, the
student's base beside it and the teachers' own scores on a last row, "not run" where a cell has not finished."""
from pathlib import Path
from types import SimpleNamespace

from protege.benchmark.report import _glance_section
from protege.doc import Doc
from test_bench_analysis import rec


def test_at_a_glance_lays_the_matrix_out_per_task_with_base_and_teacher_rows(tmp_path: Path):
    records = [rec("A", "t1", 0.70, 0.40, teacher="T1", teacher_score=0.50),
               rec("A", "t1", 0.75, 0.40, teacher="T2", teacher_score=0.90),
               rec("B", "t1", 0.30, 0.20, teacher="T1", teacher_score=0.50),
               rec("B", "t1", 0, 0, teacher="T2", done=False)]
    bench = SimpleNamespace(students=["A", "B"], teachers=["T1", "T2"], methods=["sft"])
    doc = Doc(tmp_path)
    _glance_section(doc, bench, records, {"A": "A", "B": "B", "T1": "T1", "T2": "T2"})
    table = next(b for b in doc.blocks if b[0] == "table")
    header, rows = table[1], table[2]
    assert header == ["task (metric)", "student", "base", "teacher T1", "teacher T2"]
    text = [[c[0] if isinstance(c, tuple) else c for c in row] for row in rows]
    assert text == [["t1 (accuracy)", "A", "40.0", "70.0", "75.0"],
                    ["t1 (accuracy)", "B", "20.0", "30.0", "not run"],
                    ["t1 (accuracy)", "the teacher itself", "", "50.0", "90.0"]]
    assert rows[0][4][1].endswith("runs/t1/eval-A-T2")  # each number links to the eval stage it was read from

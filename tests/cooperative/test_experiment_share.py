"""The cooperative experiment's student share reads the answers stage's records (not the generate stage's)."""
import json

from protege.lab.experiments.cooperative import student_share


def test_student_share_counts_the_answers_stage_characters(tmp_path):
    generate, answers = tmp_path / "generate-a", tmp_path / "answers-b"
    generate.mkdir()
    answers.mkdir()
    rows = [{"id": "1", "ok": True, "chars": {"student": 10, "teacher": 30}},
            {"id": "2", "ok": True, "chars": {"teacher": 60}},
            {"id": "3", "ok": False, "chars": {"student": 500}}]  # a failed answer does not count
    (answers / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert student_share({"stages": {"generate": generate, "answers": answers}}) == 0.1
    (answers / "answers.jsonl").write_text("")
    assert student_share({"stages": {"generate": generate, "answers": answers}}) is None

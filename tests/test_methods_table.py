"""The methods experiment's table: per method the fine-tuned score with its CI, the compute it trained with, the
paired tests against SFT and against the untuned student, and the forgetting suite; the teacher row on top.
Built from written eval results, no model. Run: `.venv/bin/python -m pytest -q tests/test_methods_table.py`."""
from protege.lab.experiments.methods import methods_table
from protege.tasks.spec import load_task
from written_results import finished_result


def test_each_method_row_has_score_compute_paired_tests_and_forgetting(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    sft = finished_result(tmp_path / "sft", spec, [True] * 30 + [False] * 10, name="sft")
    rl = finished_result(tmp_path / "rl", spec, [False] * 30 + [True] * 10, name="rl")
    text = methods_table([sft, rl], "python -m x")
    assert "Student zero-shot baseline: 10.0. Teacher (0-shot): 50.0." in text
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| sft") or line.startswith("| rl")}
    assert lines["| sft"].startswith("| sft | 75.0 | [65.0, 85.0] | 3 steps, 4,096 token passes | 12 |  | p = 0.0123 (9 vs 2; "
                                 "chi-square-continuity-corrected)")
    assert "| humaneval 5.0 -> 4.0 |" in lines["| sft"]
    assert "| rl | 25.0 | [15.0, 35.0] |" in lines["| rl"] and "(30 vs 10 items only one got right)" in lines["| rl"]
    assert "Test-set reads logged by these 2 eval stages: 0" in text


def test_an_evaluation_read_without_its_training_summary_says_so(tiny_task, tmp_path):
    """An eval stage carried to this machine without its training stage, made before results.json kept the
    train summary: its compute and seconds cells say n/a rather than inventing steps or zero seconds."""
    spec = load_task(str(tiny_task))
    sft = finished_result(tmp_path / "sft", spec, [True] * 30 + [False] * 10, name="sft")
    sft["train"] = {}
    text = methods_table([sft], "python -m x")
    assert "| sft | 75.0 | [65.0, 85.0] | n/a | n/a |  |" in text


def test_vs_untuned_is_the_exact_mcnemar_on_the_rows_answers(tiny_task, tmp_path):
    """With the zero-shot row's answers on disk the column is the exact test over the discordant items, not the
    eval stage's chi-square: 26 items only the fine-tuned student got right, none the other way."""
    spec = load_task(str(tiny_task))
    sft = finished_result(tmp_path / "sft", spec, [True] * 30 + [False] * 10,
                          zero_shot_right=[True] * 4 + [False] * 36, name="sft")
    text = methods_table([sft], "python -m x")
    assert f"| p = {2 * 0.5 ** 26:.3g} (26 vs 0) |" in text  # chi-square with correction would give 9.43e-07

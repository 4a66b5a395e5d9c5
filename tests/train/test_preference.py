"""Preference pairs from a scripted teacher: exactly the expected pairs, all-correct and all-wrong prompts
counted, a rerun after a kill samples only the unfinished items, and test items are refused."""
import pytest

from protege.evaluate.test_access import TestSetSelectionError
from protege.models.base import Generation
from protege.store import JsonlLog
from protege.tasks.kinds import classification
from protege.tasks.spec import Example, load_task
from protege.train.preference import build_preferences, pair_rows

# item text -> (label, the teacher's answers in sampling order)
SCRIPT = {
    "Is 4 even ?": ("yes", ["yes", "no", "yes", "no"]),  # 2 right, 2 wrong, but one distinct text each: 1 pair
    "Is 6 even ?": ("yes", ["yes", "Yes.", "yes", "yes"]),  # all correct: no pair
    "Is 8 even ?": ("yes", ["no", "maybe", "no", "nope"]),  # all wrong: no pair
    "Is 9 even ?": ("no", ["no", "yes", "No, it is odd", "yes it is"]),  # 2 distinct each way: 2 pairs
}
ITEMS = [Example(id=f"gen-{i}", text=text, label=label) for i, (text, (label, _)) in enumerate(SCRIPT.items())]


class ScriptedTeacher:
    """Implements the LM protocol: the n-th time it sees an item's prompt it gives that item's n-th answer."""

    name = "scripted-teacher"

    def __init__(self, fail_after_calls=None):
        self.seen, self.configs, self.calls, self.fail_after_calls = {}, [], 0, fail_after_calls

    def generate(self, prompts, config):
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.configs.append(config)
        out = []
        for p in prompts:
            text = next(t for t in SCRIPT if f"Text: {t}" in p[-1]["content"])
            n = self.seen.get(text, 0)
            self.seen[text] = n + 1
            answer = SCRIPT[text][1][n]
            out.append(Generation(text=answer, tokens_in=10, tokens_out=len(answer.split())))
        return out

    def score_continuations(self, prompt, continuations):
        raise NotImplementedError


def expected_pairs(spec):
    def row(i, n, chosen, rejected):
        return {"id": f"gen-{i}/{n}", "prompt": classification.prompt(spec, ITEMS[i]),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    return [row(0, 0, "yes", "no"), row(3, 0, "no", "yes"), row(3, 1, "No, it is odd", "yes it is")]


def test_pairs_are_exactly_the_expected_ones_and_counts_are_right(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    teacher = ScriptedTeacher()
    log = JsonlLog(tmp_path / "preferences.jsonl")
    summary = build_preferences(spec, teacher, ITEMS, log=log, samples_per_prompt=4, temperature=0.8,
                                pairs_per_prompt=2, progress=False)

    assert pair_rows(log.read()) == expected_pairs(spec)
    assert summary == {"prompts": 4, "samples": 16, "teacher_accuracy": 8 / 16, "teacher_mean_score": 8 / 16,
                       "pairs": 3, "prompts_with_pairs": 2, "all_correct": 1, "all_wrong": 1,
                       "tokens_in": 160,
                       "tokens_out": sum(len(a.split()) for _, answers in SCRIPT.values() for a in answers)}
    # The pair's prompt is the student's zero-shot chat; TRL renders it with the student's template.
    assert pair_rows(log.read())[0]["prompt"] == [{"role": "user", "content": classification.instruction(spec)
                                                   + "\n\nText: Is 4 even ?"}]
    # Sampled, with a distinct seed for every sample index, and the kind's own answer cap and stop.
    assert {c.temperature for c in teacher.configs} == {0.8}
    assert len({c.seed for c in teacher.configs}) == len(teacher.configs) == 4
    assert teacher.configs[0].stop == ["\n"] and teacher.configs[0].max_new_tokens == classification.MAX_NEW_TOKENS


def test_one_pair_per_prompt_by_default(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    log = JsonlLog(tmp_path / "p.jsonl")
    summary = build_preferences(spec, ScriptedTeacher(), ITEMS, log=log, progress=False)
    assert summary["pairs"] == 2 and pair_rows(log.read()) == [r for r in expected_pairs(spec) if r["id"] != "gen-3/1"]


def test_rerun_after_a_kill_skips_finished_items_and_matches_an_unbroken_run(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    unbroken, first = JsonlLog(tmp_path / "a.jsonl"), ScriptedTeacher()
    build_preferences(spec, first, ITEMS, log=unbroken, pairs_per_prompt=2, chunk=2, progress=False)

    log = JsonlLog(tmp_path / "b.jsonl")
    with pytest.raises(KeyboardInterrupt):  # killed while sampling the second chunk (4 calls per chunk)
        build_preferences(spec, ScriptedTeacher(fail_after_calls=5), ITEMS, log=log, pairs_per_prompt=2, chunk=2,
                          progress=False)
    assert log.ids() == {"gen-0", "gen-1"}
    teacher = ScriptedTeacher()
    summary = build_preferences(spec, teacher, ITEMS, log=log, pairs_per_prompt=2, chunk=2, progress=False)

    assert set(teacher.seen) == {"Is 8 even ?", "Is 9 even ?"}  # the finished items were not sampled again
    assert [c.seed for c in teacher.configs] == [c.seed for c in first.configs[4:]]  # drawn as unbroken
    assert log.read() == unbroken.read() and summary["prompts"] == 4 and summary["pairs"] == 3
    again = ScriptedTeacher()
    build_preferences(spec, again, ITEMS, log=log, pairs_per_prompt=2, chunk=2, progress=False)
    assert again.calls == 0  # nothing left to do


def test_test_items_are_refused(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    log = JsonlLog(tmp_path / "p.jsonl")
    with pytest.raises(TestSetSelectionError, match="test ids"):
        build_preferences(spec, ScriptedTeacher(), [Example(id="test-3", text="Is 3 even ?", label="no")], log=log,
                          progress=False)
    copied = Example(id="gen-9", text="Is 3 an even number ?", label="no")  # a test item's text under a new id
    with pytest.raises(TestSetSelectionError, match="same text as a test item"):
        build_preferences(spec, ScriptedTeacher(), [copied], log=log, progress=False)
    assert not log.path.exists()


def test_settings_that_cannot_form_pairs_are_rejected(tiny_task, tmp_path):
    spec = load_task(str(tiny_task))
    with pytest.raises(ValueError, match="greedy"):
        build_preferences(spec, ScriptedTeacher(), ITEMS, log=JsonlLog(tmp_path / "p.jsonl"), temperature=0.0)
    with pytest.raises(ValueError, match="at least 2 samples"):
        build_preferences(spec, ScriptedTeacher(), ITEMS, log=JsonlLog(tmp_path / "p.jsonl"), samples_per_prompt=1)

"""The turn-taking state machine on scripted sessions: turn order, cuts, span attribution and merging, the
final-answer hand-over, end of sequence, and every stop (eos, max_new_tokens, max_turns, repetition)."""
import pytest
from pydantic import ValidationError

from protege.cooperative import Chunk, CooperativeConfig, LexicalPredictor, run_turns


class Scripted:
    """A session that replays chunks ("text" or ("text", "eos")) and records what it was asked and given."""

    def __init__(self, *chunks):
        self.chunks = [c if isinstance(c, tuple) else (c, "") for c in chunks]
        self.text = ""
        self.asked: list[int] = []

    def step(self, n_tokens: int) -> Chunk:
        assert self.chunks, f"script exhausted after {self.asked}"
        text, flag = self.chunks.pop(0)
        self.asked.append(n_tokens)
        return Chunk(text, n_tokens, eos=flag == "eos")

    def append(self, text: str) -> None:
        self.text += text


def run(student, teacher, **cfg):
    sessions = {"student": student, "teacher": teacher}
    sample = run_turns(sessions, CooperativeConfig(**cfg), LexicalPredictor())
    assert "".join(s["text"] for s in sample.spans) == sample.text
    assert student.text == teacher.text == sample.text  # both models hold exactly the shared answer
    return sample


def spans(sample):
    return [(s["by"], s["text"]) for s in sample.spans]


def test_turns_alternate_and_each_chunk_is_cut_where_its_side_ends():
    # As real tokenizers do, each side's words bring the space before them (" total"): a hand-off leaves the
    # spaces after the kept words to the next side.
    student = Scripted("Okay, so the", " Then, we add", (" Hmm. ", "eos"))
    teacher = Scripted(" total is 3 + 4 = 7. Then we", " 7 + 1 = 8. Wait", (" So it is 8", "eos"))
    sample = run(student, teacher)
    assert spans(sample) == [("student", "Okay, so"), ("teacher", " total is 3 + 4 = 7."),
                             ("student", " Then,"), ("teacher", " 7 + 1 = 8."), ("student", " Hmm."),
                             ("teacher", " So it is 8")]
    # The student's end of sequence came right after its kept text: the teacher (final writer) finishes, uncut.
    assert sample.final_from == len("Okay, so total is 3 + 4 = 7. Then, 7 + 1 = 8. Hmm.")
    assert sample.stop == "eos" and sample.turns == 6
    assert student.asked == [5, 5, 5] and teacher.asked == [10, 10, 10]
    assert sample.tokens == {"student": 15, "teacher": 30}
    assert sample.chars == {"student": len("Okay, so Then, Hmm."), "teacher": len(sample.text) - 19}


def test_a_chunk_kept_whole_gives_back_a_trailing_word_the_token_limit_may_have_split():
    """The teacher's chunk stops at "5" (of "50"): the 5 goes back, so the student cannot finish the number (before,
    the student's "0" completed the teacher's word and was kept); the teacher writes 50 whole next turn."""
    from protege.cooperative.turns import _before_last_word

    student = Scripted("0 minutes", " 50 minutes", (" Okay. ", "eos"))
    teacher = Scripted("12 / hour * 5", " 50 minutes = $10. ", (" #### 10", "eos"))
    sample = run(student, teacher)
    assert spans(sample) == [("teacher", "12 / hour * 50 minutes = $10."), ("student", " Okay."),
                             ("teacher", " #### 10")]
    assert _before_last_word("x = 12") == len("x = ") and _before_last_word("x = 12. ") == len("x = 12. ")
    assert _before_last_word("total") == len("total")  # one word is all the chunk holds: kept, no empty loop


def test_a_chunk_that_ends_in_a_hyphen_after_a_word_gives_the_compound_back():
    """The teacher's chunk stops at "step-": the compound goes back whole, so the student cannot go on with
    " by-step" (session 27: "Here's a step- by-step approach" in 7 of 16 answers of the Qwen pair)."""
    from protege.cooperative.turns import _before_last_word

    student = Scripted("0 minutes", " 50 minutes", (" Okay. ", "eos"))
    teacher = Scripted("12 / hour * step-", " step-by-step = $10. ", (" #### 10", "eos"))
    sample = run(student, teacher)
    assert spans(sample) == [("teacher", "12 / hour * step-by-step = $10."), ("student", " Okay."),
                             ("teacher", " #### 10")]
    assert _before_last_word("a step-") == len("a ")
    assert _before_last_word("Here'") == len("Here'")  # one word is all the chunk holds: kept
    assert _before_last_word("so Here'") == len("so ") and _before_last_word("x -") == len("x -")
    assert _before_last_word("\n-") == len("\n-")  # a bullet's dash follows no word: kept


def test_an_empty_cut_passes_control_without_appending_and_same_side_spans_merge():
    student = Scripted("Well, ", " hmm, right, ")
    teacher = Scripted(" So 3 + 4", (" 4 + 4 = 8", "eos"))
    sample = run(student, teacher)
    assert spans(sample) == [("student", "Well, hmm, right,"), ("teacher", " 4 + 4 = 8")]
    assert sample.stop == "eos" and sample.turns == 4 and sample.forced == 0


def test_teacher_can_go_first():
    sample = run(Scripted((" Okay.", "eos")), Scripted("x = 2, so", (" x + 1 = 3", "eos")), first="teacher")
    assert spans(sample) == [("teacher", "x = 2,"), ("student", " Okay."), ("teacher", " x + 1 = 3")]
    assert sample.stop == "eos"


def test_final_marker_in_the_final_writers_text_lets_it_write_the_rest_uncut():
    student = Scripted("Okay, so ")
    teacher = Scripted(" x = 5. Final answer: 5, so", " Well, really 5", ("!", "eos"))
    sample = run(student, teacher)
    assert spans(sample) == [("student", "Okay, so"), ("teacher", " x = 5. Final answer: 5, so Well, really 5!")]
    assert sample.text[sample.final_from:] == ": 5, so Well, really 5!"
    assert teacher.asked == [10, 10, 10] and sample.stop == "eos"


def test_final_marker_from_the_other_side_hands_over_after_the_marker():
    student = Scripted("Well, ", (": 7, done", "eos"))
    teacher = Scripted(" 3 + 4 = 7. #### 7")
    sample = run(student, teacher, final_answer_by="student")
    assert spans(sample) == [("student", "Well,"), ("teacher", " 3 + 4 = 7. ####"), ("student", ": 7, done")]
    assert sample.final_from == len("Well, 3 + 4 = 7. ####") and sample.stop == "eos"


def test_the_other_side_ending_right_after_the_marker_still_leaves_the_answer_to_the_final_writer():
    student, teacher = Scripted("Well, ", (" 7", "eos")), Scripted((" 3 + 4 = 7. ####", "eos"))
    sample = run(student, teacher, final_answer_by="student")
    assert spans(sample) == [("student", "Well,"), ("teacher", " 3 + 4 = 7. ####"), ("student", " 7")]
    assert sample.stop == "eos" and sample.final_from == len("Well, 3 + 4 = 7. ####")


def test_a_marker_split_across_turns_is_found():
    # The teacher keeps "##", the student's "## " is cut to nothing, the teacher's "##" completes "####".
    sample = run(Scripted("Well, ", "## "), Scripted(" total 12 ##", ("## 12", "eos")))
    assert sample.final_from == len("Well, total 12 ####") and sample.stop == "eos"


def test_markers_are_case_insensitive_and_can_be_switched_off():
    s = run(Scripted("So "), Scripted(" final ANSWER is 3. So", ("x", "eos")))
    assert s.final_from is not None
    s = run(Scripted("So ", (" Okay.", "eos")), Scripted(" final answer is 3. So", " 3", " x"), final_markers=[],
            max_turns=3)
    assert s.final_from is not None and spans(s)[:3] == [("student", "So"), ("teacher", " final answer is 3."),
                                                        ("student", " Okay.")]  # handed over by eos, not marker


def test_eos_after_a_cut_is_dropped_with_the_rest_of_the_chunk():
    sample = run(Scripted("Okay, now ", " Hmm"), Scripted((" 7. So", "eos"), " 8"), max_turns=4)
    assert spans(sample)[1] == ("teacher", " 7.") and sample.stop == "max_turns"


def test_repetition_stops_a_loop():
    sample = run(Scripted(*[" Hmm, "] * 5), Scripted(*[" x = 1. "] * 5))
    assert sample.stop == "repetition" and sample.turns == 6
    assert sample.text == " Hmm, x = 1." * 3


def test_max_new_tokens_counts_both_sides_and_shrinks_the_last_chunk():
    student, teacher = Scripted("So ", "Well, "), Scripted("a b c ", "d e")
    sample = run(student, teacher, max_new_tokens=23)
    assert student.asked == [5, 5] and teacher.asked == [10, 3]
    assert sample.tokens == {"student": 10, "teacher": 13} and sample.stop == "max_new_tokens"


def test_max_turns_caps_and_an_empty_ping_pong_is_broken_by_the_teacher_keeping_a_word():
    student, teacher = Scripted(" x = 1", " x = 1"), Scripted(" hmm we", " hmm we")
    sample = run(student, teacher, max_turns=3, first="teacher")
    # The teacher keeps only a space (it would hand "hmm" to the student), the student nothing (its "x" is
    # capability, a student is never forced to keep one, and its space would double the teacher's), so the teacher
    # keeps its first word, style or not, without a second space before it.
    assert spans(sample) == [("teacher", " hmm")] and sample.forced == 1
    assert sample.stop == "max_turns" and sample.turns == 3


def test_config_rejects_unknown_keys_and_reports_every_problem_at_once():
    with pytest.raises(ValidationError, match="extra"):
        CooperativeConfig(student_chunk=5)
    with pytest.raises(ValidationError) as e:
        CooperativeConfig(teacher_chunk_tokens=0, repeat_times=1, student_top_p=0, final_markers=[""])
    for field in ("teacher_chunk_tokens", "repeat_times", "student_top_p", "final_markers"):
        assert field in str(e.value)


class Reading(Scripted):
    """A Scripted session that also keeps the answer it was reading at each step."""

    def __init__(self, *chunks):
        super().__init__(*chunks)
        self.read: list[str] = []

    def step(self, n_tokens: int) -> Chunk:
        self.read.append(self.text)
        return super().step(n_tokens)


def test_a_hand_off_leaves_the_spaces_after_a_sides_words_to_the_next_side():
    """Session 24's cooperative MBPP answers broke their sentences with line breaks ("returns a list \nof tuples",
    2.2 an answer): the side handing over kept the space that closed its clause, and SmolLM2, reading an answer
    that ends in a space (its tokens put spaces before words), wrote a line break there 41 times in 61 (once in 61
    without the space). No side now reads an answer that ends in a space, and none is doubled."""
    student = Reading("Okay, so the", " we add them. Then", (" Hmm. ", "eos"))
    teacher = Reading(" total is 3 + 4 = 7. Then we", " 7 + 1 = 8. Wait", (" So it is 8", "eos"))
    sample = run(student, teacher)
    assert not any(text.endswith(" ") for text in student.read + teacher.read)
    assert sample.text == "Okay, so total is 3 + 4 = 7. 7 + 1 = 8. Hmm. So it is 8"
    # the student's turn after "7." keeps nothing ("we" is the teacher's to write): a space alone is not kept
    assert spans(sample) == [("student", "Okay, so"), ("teacher", " total is 3 + 4 = 7. 7 + 1 = 8."),
                             ("student", " Hmm."), ("teacher", " So it is 8")]


def test_a_side_starting_with_a_space_after_a_line_end_does_not_add_it():
    """A hand-off after a line end keeps the line break (a model reads it as its own token); the next side's
    first word then comes without the space its token carries."""
    sample = run(Scripted("Okay.\n"), Scripted((" 3 + 4 = 7", "eos")))
    assert spans(sample) == [("student", "Okay.\n"), ("teacher", "3 + 4 = 7")]


def test_the_final_writers_code_keeps_its_indentation_across_chunks():
    """Session 21's doubled-space rule also dropped the spaces that open a chunk after a line end inside the final
    answer: code lost its indentation (15 of 96 cooperative MBPP answers, found in session 24). Text written uncut
    is kept as written."""
    student = Scripted("Okay, so")
    teacher = Scripted(" we loop.\n```python\ndef f(xs):\n", "    for x in xs:\n", "        print(x)\n",
                       ("```", "eos"))
    sample = run(student, teacher)
    assert "def f(xs):\n    for x in xs:\n        print(x)\n```" in sample.text and sample.stop == "eos"

"""Settings of one cooperative (teacher + student) decoding run; see protege/cooperative/turns.py for the rules.

    cfg = CooperativeConfig(student_chunk_tokens=5, teacher_chunk_tokens=10, final_answer_by="teacher")
    CooperativeConfig.model_validate(yaml.safe_load(text))   # unknown keys and bad values: all reported at once
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Side = Literal["student", "teacher"]


class CooperativeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Tokens each side decodes per turn (under its own tokenizer) before the boundary predictor cuts the chunk.
    student_chunk_tokens: int = 5
    teacher_chunk_tokens: int = 10
    first: Side = "student"
    # Once a marker appears in the answer (matched case-insensitively), the marker is kept and this side writes
    # everything after it, uncut: "####" (GSM8K), "Final answer", "```" (code is capability through and through).
    final_answer_by: Side = "teacher"
    final_markers: list[str] = ["####", "Final answer", "```"]
    # Caps. max_new_tokens counts every token either model decodes, discarded ones included (they cost compute).
    max_new_tokens: int = 512
    max_turns: int = 200
    # Stop when the answer ends with one string of at least repeat_min_chars characters repeated repeat_times
    # times in a row (a greedy loop such as the same chunk three times).
    repeat_times: int = 3
    repeat_min_chars: int = 8
    student_temperature: float = 0.0  # 0 means greedy
    student_top_p: float = 1.0
    teacher_temperature: float = 0.0
    teacher_top_p: float = 1.0
    seed: int = 0
    # "lexical" (curated transition/filler phrases, no model) or a directory written by
    # protege.cooperative.classifier.train_boundary_classifier.
    predictor: str = "lexical"
    # Where a side may hand over. word: at the first word of the other side's label (the predictor's cut);
    # clause: the side first finishes the clause or line it is in (up to , ; : . ! ? and the whitespace after it,
    # or a line end), so neither model's clauses are cut in two.
    handoff: Literal["word", "clause"] = "word"
    # Both answer modes (protege/synth/answers.py): a sentence added to each item's prompt, e.g. "Before the code,
    # explain your approach in two or three sentences." A code answer's text before its code block is kept as the
    # item's rationale and trained on. None: the kind's prompt as training and evaluation render it.
    answer_instruction: str | None = None

    @model_validator(mode="after")
    def _check(self):
        problems = []
        for name in ("student_chunk_tokens", "teacher_chunk_tokens", "max_new_tokens", "max_turns",
                     "repeat_min_chars"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.repeat_times < 2:
            problems.append(f"repeat_times must be >= 2: one occurrence is not a repetition (got {self.repeat_times})")
        for side in ("student", "teacher"):
            t, p = getattr(self, f"{side}_temperature"), getattr(self, f"{side}_top_p")
            if t < 0:
                problems.append(f"{side}_temperature must be >= 0, 0 meaning greedy (got {t})")
            if not 0 < p <= 1:
                problems.append(f"{side}_top_p must be in (0, 1] (got {p})")
        if any(not m for m in self.final_markers):
            problems.append("final_markers must not contain an empty string (it would match at once); "
                            "use [] to switch the final-answer hand-over off")
        if self.answer_instruction is not None and not self.answer_instruction.strip():
            problems.append("answer_instruction must be a sentence for the teacher, or null for none")
        if not self.predictor:
            problems.append('predictor must be "lexical" or the directory of a trained boundary classifier')
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def chunk_tokens(self, side: Side) -> int:
        return self.student_chunk_tokens if side == "student" else self.teacher_chunk_tokens

    def sampling(self, side: Side) -> tuple[float, float]:
        """(temperature, top_p) of one side."""
        if side == "student":
            return self.student_temperature, self.student_top_p
        return self.teacher_temperature, self.teacher_top_p

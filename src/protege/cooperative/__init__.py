"""Cooperative teacher-student decoding (TESSY, arXiv:2604.14164): one answer, written in turns, the student
writing the style tokens and the teacher the capability tokens, so the data reads like the student.

    from protege.cooperative import CooperativeConfig, cooperate_many
    samples = cooperate_many(prompts, teacher_lm, student_lm, CooperativeConfig(final_answer_by="teacher"))

Files: config.py (settings), lexicon.py (style phrase lists, annotation), boundary.py (cut predictors),
classifier.py (trainable predictor, agreement), session.py (incremental decoding with KV reuse; the hand-off
tokenisation rule), remote.py (OpenAI-compatible session), turns.py (the turn-taking state machine), batched.py (many answers'
turns of one model decoded as one batch),
bench.py (cost against teacher-only generation).
"""
from protege.cooperative.boundary import BoundaryPredictor, LexicalPredictor, load_predictor
from protege.cooperative.classifier import ClassifierPredictor, agreement, train_boundary_classifier
from protege.cooperative.config import CooperativeConfig
from protege.cooperative.lexicon import Span, annotate
from protege.cooperative.session import Chunk, LocalSession, Session, open_session
from protege.cooperative.batched import step_together
from protege.cooperative.turns import (CooperativeSample, cooperate, cooperate_batch, cooperate_many, run_turns,
                                     run_turns_together)

__all__ = ["BoundaryPredictor", "LexicalPredictor", "load_predictor", "ClassifierPredictor", "agreement",
           "train_boundary_classifier", "CooperativeConfig", "Span", "annotate", "Chunk", "LocalSession",
           "Session", "open_session", "CooperativeSample", "cooperate", "cooperate_batch", "cooperate_many", "run_turns",
           "run_turns_together", "step_together"]

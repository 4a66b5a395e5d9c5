"""Fixtures of the cooperative tests: two tiny random models whose tokenizers differ (other training text and
vocabulary size), and scripted sessions that replay predetermined chunks."""
from __future__ import annotations

from pathlib import Path

import pytest

from tiny import CORPUS

# A second tokenizer: trained on reasoning-flavoured text with a larger vocabulary, so its merges differ.
MATH_CORPUS = [
    "Well , so let's see : 3 + 4 = 7 , then 7 * 2 = 14 . Therefore the answer is 14 .",
    "Okay , first we compute the total : 12 / 3 = 4 apples each . Hmm , wait , that means x = 4 .",
    "def add ( a , b ) : return a + b  # code with identifiers x_1 and total_count",
    "In other words , the number of students is 25 . Now , next , we subtract 5 .",
]


def build_model(folder: Path, corpus: list[str], vocab_size: int, seed: int) -> Path:
    """tests/tiny.py's 2-layer Llama with its own BPE tokenizer (the corpus and size given)."""
    from tiny import build_tiny_model

    return build_tiny_model(folder, seed=seed, corpus=corpus, vocab_size=vocab_size, max_positions=2048)


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    """(teacher, student) LocalLMs with different tokenizers and weights."""
    from protege.models.local import LocalLM

    root = tmp_path_factory.mktemp("coop-models")
    teacher = LocalLM.from_dir(build_model(root / "teacher", CORPUS, 300, seed=1), name="tiny-teacher")
    student = LocalLM.from_dir(build_model(root / "student", MATH_CORPUS, 420, seed=2), name="tiny-student")
    return teacher, student

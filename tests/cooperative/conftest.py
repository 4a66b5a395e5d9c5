"""Fixtures of the cooperative tests: two tiny random models whose tokenizers differ (other training text and
vocabulary size), and scripted sessions that replay predetermined chunks."""
from __future__ import annotations

from pathlib import Path

import pytest

from tiny import CHAT_TEMPLATE, CORPUS

# A second tokenizer: trained on reasoning-flavoured text with a larger vocabulary, so its merges differ.
MATH_CORPUS = [
    "Well , so let's see : 3 + 4 = 7 , then 7 * 2 = 14 . Therefore the answer is 14 .",
    "Okay , first we compute the total : 12 / 3 = 4 apples each . Hmm , wait , that means x = 4 .",
    "def add ( a , b ) : return a + b  # code with identifiers x_1 and total_count",
    "In other words , the number of students is 25 . Now , next , we subtract 5 .",
]


def build_model(folder: Path, corpus: list[str], vocab_size: int, seed: int) -> Path:
    """A 2-layer, 16-wide Llama with its own BPE tokenizer (as tests/tiny.py, with the corpus and size given)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>",
                                                                          "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<pad>", bos_token="<|im_start|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory):
    """(teacher, student) LocalLMs with different tokenizers and weights."""
    from protege.models.local import LocalLM

    root = tmp_path_factory.mktemp("coop-models")
    teacher = LocalLM.from_dir(build_model(root / "teacher", CORPUS, 300, seed=1), name="tiny-teacher")
    student = LocalLM.from_dir(build_model(root / "student", MATH_CORPUS, 420, seed=2), name="tiny-student")
    return teacher, student

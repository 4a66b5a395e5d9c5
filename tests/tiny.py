"""Tiny random-init models, tokenizers and tasks built locally for tests (never a hub)."""
from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "What is the capital of France ? Paris is a location .",
    "How many people live in Tokyo ? a number , a count , a date .",
    "Who wrote Hamlet ? a human , a person . What does NASA stand for ? abbreviation",
    "Classify the question by the type of answer it asks for . Answer with one of : yes , no .",
    "Text : Write one new , different example labelled . Here are examples",
]


# Prompts whose rows share openings: an instruction, then one of two seed items (tests of prefix caching).
INSTRUCTION = "Classify the question by the type of answer it asks for . Answer with one of : yes , no . "
SEED_A = "Here are examples . What is the capital of France ? Paris is a location . "
SEED_B = "Here are examples . Who wrote Hamlet ? a human , a person . "


def build_tiny_model(folder: Path, seed: int = 0, corpus: list[str] | None = None, vocab_size: int = 300,
                     max_positions: int = 1024) -> Path:
    """A 2-layer, 16-wide Llama with a small BPE tokenizer (trained on `corpus`, default CORPUS) and a chat
    template, saved as an HF folder."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((corpus or CORPUS) * 5, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<|im_end|>",
                                   pad_token="<pad>", bos_token="<|im_start|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         bos_token_id=fast.bos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def write_tiny_task(folder: Path, n_test: int = 12) -> Path:
    """A yes/no classification task with inline seeds and a JSONL test file."""
    folder.mkdir(parents=True, exist_ok=True)
    test = [{"question": f"Is {i} an even number ?", "answer": "yes" if i % 2 == 0 else "no"} for i in range(n_test)]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    (folder / "task.yaml").write_text(
        "name: tiny\n"
        "kind: classification\n"
        "description: Answer the question with yes or no.\n"
        "labels:\n  - {name: 'yes', description: the answer is yes}\n  - {name: 'no', description: the answer is no}\n"
        "seeds:\n"
        "  - {text: 'Is 2 even ?', label: 'yes'}\n  - {text: 'Is 3 even ?', label: 'no'}\n"
        "  - {text: 'Is 10 even ?', label: 'yes'}\n  - {text: 'Is 7 even ?', label: 'no'}\n"
        "test: {path: test.jsonl, format: jsonl, fields: {text: question, label: answer}}\n"
        "metric: accuracy\n"
    )
    return folder / "task.yaml"


def add_tiny_validation(task: Path, numbers, rows: list[dict] | None = None) -> Path:
    """The tiny task with a validation split: yes/no questions about `numbers` worded unlike the test items, then
    `rows` as given (e.g. copies of test items)."""
    made = [{"question": f"Is {i} an odd or even number , truly ?", "answer": "yes" if i % 2 == 0 else "no"}
            for i in numbers]
    (task.parent / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in made + (rows or [])))
    task.write_text(task.read_text() + "validation: {path: validation.jsonl, format: jsonl, "
                                       "fields: {text: question, label: answer}}\n")
    return task


def write_tiny_qa_task(folder: Path, n_test: int = 6) -> Path:
    """A closed-book QA task (the forgetting suite of tiny runs): answers are the numbers themselves."""
    folder.mkdir(parents=True, exist_ok=True)
    test = [{"q": f"What number comes after {i} ?", "a": [str(i + 1)]} for i in range(n_test)]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    (folder / "task.yaml").write_text(
        "name: tinyqa\nkind: qa\ndescription: Answer with a number.\n"
        "seeds:\n  - {text: 'What number comes after 10 ?', answers: ['11']}\n"
        "test: {path: test.jsonl, fields: {text: q, answers: a}}\n"
    )
    return folder / "task.yaml"


# Curation without the MiniLM sentence encoder (its package, 88 MB, is not on a bare GPU machine): for tests
# about something else that must run there (scripts/gpu-check.sh). Exact and n-gram checks stay on.
NO_ENCODER = {"contam_cosine": None, "near_dup_cosine": None}


def write_tiny_config(folder: Path, model_dir: Path, task_path: Path, **sections) -> Path:
    """A run config over the tiny model and task, small enough to run the whole flow in seconds."""
    import yaml

    cfg = {
        "task": str(task_path),
        "runs_dir": str(folder / "runs"),
        "generate": {"teacher": f"hf:{model_dir}", "num_examples": 8, "batch_size": 4, "max_new_tokens": 6},
        "curate": {"min_chars": 1},
        "train": {"student": f"hf:{model_dir}", "epochs": 2, "batch_size": 4, "lora_rank": 4, "lora_alpha": 8,
                  "lr": 1e-2, "checkpoint_every": 2},
        "eval": {"bootstrap_resamples": 50,
                 "forgetting": {"tasks": [str(write_tiny_qa_task(folder / "suite"))], "items": 6}},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path

"""Human-written Python on every machine: the standard library's sources, as a raw-text distillation corpus.

    train, held_out = stdlib_blocks(tokenizer, block_tokens=256, train_blocks=64, held_out_blocks=16)

Files are listed in a fixed order and split by a hash of their path (about one in five held out), so the split
is the same on every machine with the same Python, and no held-out file ever lends a block to training.
Blocks are consecutive `block_tokens` windows of each file's tokens; tests, vendored and generated modules are
skipped (they are not typical hand-written code).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

SKIP_PARTS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "__pycache__", "turtledemo", "ensurepip",
              "pydoc_data", "encodings", "_pyrepl"}


def stdlib_files() -> list[Path]:
    from protege.models.prune import CALIBRATION_FILES

    root = Path(os.__file__).parent
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP_PARTS.intersection(rel.parts) or rel.name.startswith(("test_", "_pydecimal", "_pydatetime")):
            continue
        if str(rel) in CALIBRATION_FILES:  # pruning chose layers on these: neither train nor judge on them
            continue
        files.append(path)
    return files


def is_held_out(path: Path, share: int = 5) -> bool:
    rel = str(path.relative_to(Path(os.__file__).parent))
    return int(hashlib.sha256(rel.encode()).hexdigest(), 16) % share == 0


def _blocks(files: list[Path], tokenizer, block_tokens: int, limit: int) -> list[list[int]]:
    out: list[list[int]] = []
    for path in files:
        ids = tokenizer(path.read_text(errors="replace"), add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids) - block_tokens + 1, block_tokens):
            out.append(ids[start: start + block_tokens])
            if len(out) >= limit:
                return out
    return out


def stdlib_blocks(tokenizer, block_tokens: int = 256, train_blocks: int = 64,
                  held_out_blocks: int = 16) -> tuple[list[list[int]], list[list[int]]]:
    """Token blocks for training and for held-out evaluation, from disjoint files.

    Files are interleaved by a hash of their name before cutting, so the first blocks do not all come from
    modules whose names start with "a".
    """
    files = sorted(stdlib_files(), key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    train = _blocks([f for f in files if not is_held_out(f)], tokenizer, block_tokens, train_blocks)
    held = _blocks([f for f in files if is_held_out(f)], tokenizer, block_tokens, held_out_blocks)
    if len(train) < train_blocks or len(held) < held_out_blocks:
        raise ValueError(f"the standard library at {Path(os.__file__).parent} gave {len(train)} training and "
                         f"{len(held)} held-out blocks of {block_tokens} tokens; ask for fewer")
    return train, held

"""The fixed choices of settings, declared once: the config models' fields and the CLI's options use these
types, so help, validation and error messages agree (`protege eval --scoring` and `eval.scoring` alike).
Choices that grow by registration (task kinds, training methods) live in their registries instead."""
from __future__ import annotations

from typing import Literal

Precision = Literal["auto", "fp32", "bf16"]  # models/precision.py
Scoring = Literal["likelihood", "generate"]  # classification: label likelihood, or generate then parse
ExecutorKind = Literal["local", "ray"]  # protege bench: cells in this process, or on a Ray cluster
Importance = Literal["nll", "cosine"]  # protege student prune: how layers are scored
ExportFormat = Literal["hf", "gguf", "ollama"]  # protege export: what to write
Split = Literal["test", "validation"]  # protege eval --model: the final score, or a choice made on validation

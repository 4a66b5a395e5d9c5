"""An Ollama Modelfile for the exported GGUF file: `ollama create my-student -f Modelfile` in its folder.

ChatML students (SmolLM2, Qwen: `<|im_start|>role ... <|im_end|>`) get the matching TEMPLATE and stop token, so
Ollama prompts them as protege trained them; other chat templates get the GGUF file's own template (Ollama reads
it from the file) and a note saying so.
"""
from __future__ import annotations

from pathlib import Path

from protege.store import atomic_write_text

CHATML = ('TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
          '<|im_start|>assistant\n"""')


def write_modelfile(folder: Path, gguf_name: str, chat_template: str | None, temperature: float = 0.0) -> Path:
    lines = ["# Written by protege export; run `ollama create <name> -f Modelfile` in this folder.",
             f"FROM ./{gguf_name}"]
    if chat_template and "<|im_start|>" in chat_template:
        lines += [CHATML, 'PARAMETER stop "<|im_end|>"']
    else:
        lines.append("# This chat template is not ChatML: Ollama uses the template stored in the GGUF file.")
    lines += ["# greedy decoding, as protege evaluated the student", f"PARAMETER temperature {temperature:g}"]
    path = Path(folder) / "Modelfile"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path

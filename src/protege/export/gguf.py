"""The merged student as one GGUF file, for llama.cpp and Ollama, by llama.cpp's own converter.

    path = export_gguf(hf_folder, Path("out/my-student.gguf"), outtype="f16")

The converter (convert_hf_to_gguf.py, llama_source.py) runs in a subprocess with its own gguf-py. `outtype`:
f32, f16, bf16 or q8_0 (the converter's choices). Measured on the demo's TREC-6 student (SmolLM2-135M + LoRA),
greedy answers to the first 50 test prompts, llama-cpp-python 0.3.36 against the merged HF folder in fp32: f16
agreed on 50 of 50, q8_0 on 44 of 50 (145 MB instead of 270): f16 is the default. Model families the converter
does not know, and tokenizers it cannot identify, are refused by it; its message is passed on.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OUTTYPES = ("f32", "f16", "bf16", "q8_0")


class ConversionFailed(RuntimeError):
    """llama.cpp's converter refused the folder; the message carries its last lines."""


def export_gguf(hf_folder: Path, out: Path, outtype: str = "f16") -> Path:
    from protege.export.llama_source import converter_dir

    if outtype not in OUTTYPES:
        raise ValueError(f"--gguf-type: {outtype!r} is not one of {', '.join(OUTTYPES)}")
    convert = converter_dir()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(convert / "gguf-py"), os.environ.get("PYTHONPATH", "")]),
           "NO_LOCAL_GGUF": ""}
    done = subprocess.run([sys.executable, str(convert / "convert_hf_to_gguf.py"), str(hf_folder), "--outfile",
                           str(tmp), "--outtype", outtype], capture_output=True, text=True, env=env)
    if done.returncode != 0 or not tmp.exists():
        tmp.unlink(missing_ok=True)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise ConversionFailed(f"llama.cpp's converter could not convert {hf_folder}:\n{tail}")
    os.replace(tmp, out)
    return out

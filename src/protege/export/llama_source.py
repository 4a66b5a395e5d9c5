"""llama.cpp's Python converter (convert_hf_to_gguf.py and its gguf-py), taken from the llama-cpp-python sdist:
downloaded from PyPI once into $PROTEGE_CACHE/wheels/sdist (where `make bench` keeps it too) and unpacked once.

    folder = converter_dir()      # .../llama.cpp-convert/0.3.36: convert_hf_to_gguf.py, conversion/, gguf-py/
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from protege.models.resolve import cache_dir

VERSION = "0.3.36"
PARTS = ("conversion/", "gguf-py/")


class ConverterUnavailable(RuntimeError):
    """The converter could not be fetched (no access to PyPI, or a broken download)."""


def sdist_path() -> Path:
    """The llama-cpp-python sdist, downloaded from PyPI the first time."""
    folder = cache_dir() / "wheels" / "sdist"
    sdist = folder / f"llama_cpp_python-{VERSION}.tar.gz"
    if sdist.exists():
        return sdist
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           f"llama-cpp-python=={VERSION}", "-d", str(folder)], capture_output=True, text=True)
    if done.returncode != 0 or not sdist.exists():
        raise ConverterUnavailable(f"downloading llama-cpp-python {VERSION} (the source of llama.cpp's GGUF "
                                   f"converter) from PyPI failed: {done.stderr.strip()[-300:]}; put the sdist at "
                                   f"{sdist}")
    return sdist


def converter_dir() -> Path:
    """A folder with convert_hf_to_gguf.py, conversion/ and gguf-py/, unpacked from the sdist once."""
    target = cache_dir() / "llama.cpp-convert" / VERSION
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        with tarfile.open(sdist_path()) as tar:
            prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
            # the script, the `conversion` package it imports (one module per model family), and gguf-py
            wanted = [m for m in tar.getmembers() if m.name.startswith(prefix) and (
                m.name[len(prefix):] == "convert_hf_to_gguf.py" or m.name[len(prefix):].startswith(PARTS))]
            tar.extractall(tmp, members=wanted, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        src = Path(tmp) / prefix
        staged = Path(tmp) / "staged"
        staged.mkdir()
        shutil.copy2(src / "convert_hf_to_gguf.py", staged / "convert_hf_to_gguf.py")
        for part in PARTS:
            shutil.copytree(src / part, staged / part)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    return target

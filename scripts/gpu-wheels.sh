#!/usr/bin/env bash
# Wheels for scripts/gpu-check.sh on a GPU machine that cannot reach PyPI and lacks some of protege's needs (the
# lent H200 image has torch, transformers, peft, accelerate, typer, numpy, pandas, tqdm, but not pydantic, trl,
# datasets or gguf, which loading a bundled GGUF model needs). Run here, where pip works; carry .whl/ (ignored by
# git) to that machine; gpu-check.sh installs them into /tmp/site first. Versions are the ones this checkout's
# .venv runs; PYVER is the target's Python.
#
#   scripts/gpu-wheels.sh            # -> .whl/*.whl for CPython 3.12, manylinux x86-64
set -euo pipefail
PYVER=${PYVER:-3.12}
PIP=${PIP:-.venv/bin/pip}
mkdir -p .whl
version() { $PIP show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }
for name in pydantic pydantic_core annotated-types typing-inspection trl datasets dill multiprocess gguf; do
  v=$(version "$name")
  $PIP download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$name${v:+==$v}"
done
ls -1 .whl
du -sh .whl

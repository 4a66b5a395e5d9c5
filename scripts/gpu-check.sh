#!/usr/bin/env bash
# The GPU check of issue 22, in under 8 minutes: the cuda-marked tests (generation on both decoders and label
# scoring against the CPU, a KD run, cooperative sampling, the bf16 paths; the whole flow, on-policy KD, GRPO and
# cooperative answers with span hand-offs on cuda), then the distillation building blocks
# timed on the GPU (protege.lab.throughput.gpu_check), figures printed and written to $OUT (or the current folder).
#
#   scripts/gpu-check.sh                 # from the repository root, with a CUDA build of torch in python3
#   PYTHON=.venv/bin/python scripts/gpu-check.sh
#
# Where protege's own dependencies are missing and nothing can be installed (a bare GPU machine), carry wheels in
# .whl/ (see README, "More than one CPU"); they are installed into /tmp/site first.
set -euo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-.}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
$PY - <<'PYEOF'
import torch
assert torch.cuda.is_available(), "torch sees no GPU: run this where one is, with a CUDA build of torch"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
PYEOF
start=$(date +%s)
$PY -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_device_methods.py tests/test_bf16_paths.py 2>&1 \
  | tee "$OUT/gpu-tests.log" || echo "some GPU tests failed (log: $OUT/gpu-tests.log)"  # the timings run anyway
echo "tests: $(( $(date +%s) - start )) s"
$PY -m protege.lab.throughput.gpu_check --device cuda --out "$OUT/gpu-check.json"
echo "total: $(( $(date +%s) - start )) s"

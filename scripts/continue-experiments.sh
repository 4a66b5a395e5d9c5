#!/usr/bin/env bash
# The long code experiments of issues 19-21, continued on whatever machine this is: installs the real teachers,
# restores carry/ under runs/ (checked), prunes the Qwen student once where one needs it (cached), then runs each
# experiment's own command in turn. Every command reuses finished stages and resumes begun ones, so stopping this
# script loses at most the chunk of items in progress; run it again to go on.
#
#   scripts/continue-experiments.sh                 # every experiment, in order
#   scripts/continue-experiments.sh methods-code    # one (teacher-size, methods-code, methods-code-qwen, cooperative-code)
#
# Precision: fp32 throughout (PROTEGE_PRECISION=fp32), the precision every carried stage was made in. On an
# AVX-512 BF16 or AMX CPU `auto` means bf16, whose stage keys differ: the carried stages would not be found and
# the teachers' data would be regenerated in another precision. One torch job at a time on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROTEGE_PRECISION=fp32 HF_HUB_OFFLINE=1
PY=.venv/bin/python
make -s teachers
for folder in carry/*/; do
  [ -f "$folder/CARRIED.json" ] && .venv/bin/protege runs unpack "$folder"
done
# The pruned Qwen student, made once and cached (a few minutes the first time): only the experiments that use it.
pruned() {
  echo "hf:$($PY -c 'from protege.lab.experiments.teacher_size import pruned_student; print(pruned_student()[3:])')"
}

run() {
  case "$1" in
    teacher-size) $PY -m protege.lab.experiments.teacher_size configs/teacher-size-code.yaml \
                    --out docs/experiments/teacher-size-code.md ;;
    methods-code) $PY -m protege.lab.experiments.methods configs/methods-code.yaml --methods sft,kd,onpolicy,rl \
                    --out docs/experiments/methods-code.md ;;
    methods-code-qwen) $PY -m protege.lab.experiments.methods configs/methods-code.yaml \
                         --methods sft,kd,onpolicy,rl --out docs/experiments/methods-code.md --table qwen-student \
                         "train.student=$(pruned)" ;;
    cooperative-code) $PY -m protege.lab.experiments.cooperative_arms configs/cooperative-code.yaml \
                        --out docs/experiments/cooperative-code.md ;;
    *) echo "unknown experiment '$1': teacher-size, methods-code, methods-code-qwen or cooperative-code" >&2
       exit 2 ;;
  esac
}

for name in "${@:-teacher-size methods-code methods-code-qwen cooperative-code}"; do
  for one in $name; do
    echo "== $one ($(date -u +%H:%M:%S))"
    run "$one"
  done
done

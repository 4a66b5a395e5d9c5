#!/usr/bin/env bash
# The long code experiments of issues 19-21, continued on whatever machine this is: installs the real teachers,
# restores carry/ under runs/ (checked), prunes the Qwen student once where one needs it (cached), then runs each
# experiment's own command in turn. Every command reuses finished stages and resumes begun ones, so stopping this
# script loses at most the chunk of items in progress; run it again to go on.
#
#   scripts/continue-experiments.sh                 # every experiment, in order
#   scripts/continue-experiments.sh methods-code    # one (teacher-size, methods-code, methods-code-qwen,
#                                                   #   cooperative-code, prune-depth-code, cooperative-code-qwen)
#
# Precision: fp32 (PROTEGE_PRECISION=fp32), the precision every carried stage was made in, except prune-depth-code
# (bf16: the precision cooperative-code's data config writes the student's words in). On an
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
# The same-family Qwen student: the prune depth prune-depth-code chose on MBPP validation (22 of 24 layers; the
# 12-layer prune writes no working code), pruned here once and cached when this machine lacks it.
chosen_qwen() {
  $PY -c 'from protege.lab.experiments.prune_depth import chosen_student
print(chosen_student("docs/experiments/prune-depth-code.json"))'
}

run() {
  case "$1" in
    teacher-size) $PY -m protege.lab.experiments.teacher_size configs/teacher-size-code.yaml \
                    --out docs/experiments/teacher-size-code.md ;;
    # the span table (the first table keeps session 20's rows, aligned by start)
    methods-code) $PY -m protege.lab.experiments.methods configs/methods-code.yaml --methods sft,kd,onpolicy,rl \
                    --out docs/experiments/methods-code.md --table span ;;
    # on-policy's scoring and training, and GRPO's training, in pairs of rows: on-policy's 8 rows of ~530 tokens
    # at once ran 24 GiB out of memory (session 37); in pairs it peaked at 19 GB (session 38)
    methods-code-qwen) $PY -m protege.lab.experiments.methods configs/methods-code.yaml \
                         --methods sft,kd,onpolicy,rl --out docs/experiments/methods-code.md --table qwen-student \
                         "train.student=$(chosen_qwen)" train.onpolicy.micro_batch_tokens=1100 \
                         train.rl.micro_batch_rows=2 ;;
    cooperative-code) $PY -m protege.lab.experiments.cooperative_arms configs/cooperative-code.yaml \
                        --out docs/experiments/cooperative-code.md ;;
    # issue 21's same-family student: the prune depth chosen on MBPP validation (bf16 on a bf16 CPU: the
    # precision the cooperative student writes its words in), then its four arms in a second table
    prune-depth-code) PROTEGE_PRECISION=bf16 $PY -m protege.lab.experiments.prune_depth \
                        --from bundled:qwen2.5-coder-0.5b-instruct --task mbpp --keep 12,14,16,18,20,21,22 \
                        --out docs/experiments/prune-depth-code.md ;;
    # Its four arms at the smallest yield, 134 (teacher only 134, lexical 143, trained predictor 141). Every variant's
    # data is made (bf16, the trained one's finished on an AVX-512 BF16 CPU in session 43), so the rest, training
    # and evaluation, is fp32 on any CPU. (Sessions 41-42 ran its arms without the trained variant, `--without
    # trained`, whose answers AVX2 can only emulate; those arms have the same stage keys and are reused.)
    # the on-policy arm's micro-batches as methods-code-qwen's (one step at once needs more than 24 GiB); the SFT
    # arms' stage keys leave train.onpolicy out
    cooperative-code-qwen) $PY -m protege.lab.experiments.cooperative_arms configs/cooperative-code.yaml \
                             --out docs/experiments/cooperative-code.md --table qwen-student \
                             "train.student=$(chosen_qwen)" train.onpolicy.micro_batch_tokens=1100 ;;
    *) echo "unknown experiment '$1': teacher-size, methods-code, methods-code-qwen, cooperative-code," \
            "prune-depth-code or cooperative-code-qwen" >&2
       exit 2 ;;
  esac
}

EVERY="teacher-size methods-code methods-code-qwen cooperative-code prune-depth-code cooperative-code-qwen"
for name in "${@:-$EVERY}"; do
  for one in $name; do
    echo "== $one ($(date -u +%H:%M:%S))"
    run "$one"
  done
done

#!/usr/bin/env bash
# GPU readiness check, about 10 minutes on one GPU (issue 20):
#   1. ops.json        fla vs chunked-torch Gated DeltaNet and KDA: agreement (max abs diff of
#                      outputs, states, gradients) and fwd+bwd time at 1k, 2k, 4k, 8k tokens
#   2. trm_rate.json   TRM optimizer steps/s at the paper config (configs/trm-sudoku-extreme.yaml's
#                      model, batch 768), bf16 autocast + torch.compile, synthetic batches
#   3. run/            TRAIN_SECONDS (default 240, so the whole check fits 10 minutes; 600 for
#                      ten minutes of training) of configs/trm-sudoku-extreme.yaml on a freshly
#                      built Sudoku-Extreme set (TRAIN_PUZZLES x (1 + AUGMENT), TEST_PUZZLES): its
#                      metrics.jsonl and loss curve run/curves.png (tracegym plot)
#   summary.json       what ran, the seconds each part took, the figures above in one file
#
# Without CUDA it prints why and exits 0 (nothing to check). --cpu-only runs the same three parts
# at CPU size in about a minute (CI: tests/agents/test_gpu_check.py): the chunked ops against the
# loop over time, a tiny TRM step rate without compile, and the config's --smoke run.
#
#   bash benchmarks/gpu_check.sh [--cpu-only] [--out DIR] [--train-seconds S]
#   (PYTHON=... picks the interpreter; TRAIN_PUZZLES, AUGMENT, TEST_PUZZLES size the data)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python}"
out="runs/gpu_check"
cpu_only=0
train_seconds="${TRAIN_SECONDS:-240}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --cpu-only) cpu_only=1; shift ;;
        --out) out="$2"; shift 2 ;;
        --train-seconds) train_seconds="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [[ $cpu_only -eq 0 ]] && ! "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check.sh: no CUDA device here: skipping the GPU checks (--cpu-only runs their CPU part)"
    exit 0
fi

mkdir -p "$out"
config="$root/configs/trm-sudoku-extreme.yaml"
: > "$out/seconds.txt"
timed() {  # timed NAME CMD...: run CMD, append "NAME SECONDS" to seconds.txt
    local name="$1" start
    shift
    start=$(date +%s.%N)
    "$@"
    echo "$name $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')" \
        >> "$out/seconds.txt"
}

if [[ $cpu_only -eq 1 ]]; then
    ops_args=(ops --device cpu --lengths 64 --repeats 1)
    trm_args=(trm --device cpu --quick --steps 2 --warmup 1)
    data_args=(--train 16 --augment 0 --test 8 --workers 1)
    train_args=(--smoke max_steps=6 eval_examples=8 log_every=1 progress=false)
else
    ops_args=(ops --device cuda --lengths 1024,2048,4096,8192)
    trm_args=(trm --device cuda --steps 20 --warmup 5)
    data_args=(--train "${TRAIN_PUZZLES:-1000}" --augment "${AUGMENT:-100}"
               --test "${TEST_PUZZLES:-1000}" --workers "$(nproc)")
    train_args=(time_budget_s="$train_seconds" eval_examples=1000 eval_every=0
                checkpoint_every=0 checkpoint_minutes=0 log_every=10 progress=false)
fi

echo "== 1. delta-rule ops -> $out/ops.json"
timed ops "$python" "$here/gpu_check.py" "${ops_args[@]}" > "$out/ops.json"
echo "== 2. TRM step rate at the paper config -> $out/trm_rate.json"
timed trm_rate "$python" "$here/gpu_check.py" "${trm_args[@]}" > "$out/trm_rate.json"
echo "== 3. Sudoku-Extreme data and training -> $out/run"
if [[ ! -f "$out/data/train/dataset.json" ]]; then
    timed data "$python" -m tracegym data sudoku --size 9 --difficulty extreme "${data_args[@]}" \
        --out "$out/data" --overwrite --no-progress
fi
timed train "$python" -m tracegym train --config "$config" --data "$out/data" --out "$out/run" \
    --overwrite "${train_args[@]}"
timed plot "$python" -m tracegym plot "$out/run" --out "$out/run/curves.png"

"$python" - "$out" "$cpu_only" <<'EOF'
import json, sys
from pathlib import Path

out, cpu_only = Path(sys.argv[1]), sys.argv[2] == "1"
seconds = {name: float(s) for name, s in
           (line.split() for line in (out / "seconds.txt").read_text().splitlines())}
lines = [json.loads(l) for l in (out / "run" / "metrics.jsonl").read_text().splitlines() if l]
train = [l for l in lines if l.get("split") == "train"]
evals = [l for l in lines if l.get("split") == "eval"]
summary = {
    "cpu_only": cpu_only, "seconds": seconds,
    "ops": json.loads((out / "ops.json").read_text())["rows"],
    "trm_rate": {k: v for k, v in json.loads((out / "trm_rate.json").read_text()).items()
                 if k in ("steps_per_s", "examples_rows_per_s", "compile", "amp_bf16", "warmup_s")},
    "train": {"steps": train[-1]["step"] if train else 0,
              "first_loss": train[0]["loss"] if train else None,
              "last_loss": train[-1]["loss"] if train else None,
              "eval": evals[-1] if evals else None,
              "curve": str(out / "run" / "curves.png")},
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary["train"], indent=2))
EOF
echo "gpu_check.sh: done; $out/summary.json"

#!/usr/bin/env bash
# The main job on built-in defaults, from a clean clone: set up .venv as README's Set-up says,
# build a small 4x4 Sudoku dataset, train a tiny TRM on it (about two minutes on a CPU), submit
# its answers to tracegym/Sudoku-v0, plot the curves and say where everything went.
#
#   bash scripts/quickstart.sh          (or: make quickstart)
#
# Rerunnable: the data is rebuilt in place (same arguments and seed, same bytes) and each run
# trains into a new directory runs/quickstart-<time>, so no earlier run is overwritten.
# Optional environment: PYTHON (the interpreter for the venv, default python3), TORCH_INDEX
# (PyTorch's wheel index, default the CPU build), QUICKSTART_TRAIN (train puzzles, 2000),
# QUICKSTART_EPISODES (env episodes, 500), QUICKSTART_OVERRIDES (extra key=value for train).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
TRAIN=${QUICKSTART_TRAIN:-2000}
EPISODES=${QUICKSTART_EPISODES:-500}
DIFFICULTY=hard  # the level the recipe in $CONFIG is made for
CONFIG=configs/trm-sudoku4-cpu.yaml
DATA=data/sudoku4-quickstart
RUN=runs/quickstart-$(date +%Y%m%d-%H%M%S)

step() { printf '\n== %s\n' "$*"; }

# -- set-up: README's lines, run only when .venv cannot import tracegym and torch yet
if [ ! -f .venv/bin/activate ]; then
    step "creating .venv with $PYTHON"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "quickstart: $PYTHON is missing or older than 3.10; set PYTHON=/path/to/python3.x" >&2
        exit 1
    fi
    if ! "$PYTHON" -m venv .venv; then
        echo "quickstart: '$PYTHON -m venv' failed (on Debian/Ubuntu: apt install python3-venv)" >&2
        rm -rf .venv
        exit 1
    fi
fi
. .venv/bin/activate
if ! python -c 'import tracegym, torch' 2>/dev/null; then
    step "installing torch (from $TORCH_INDEX) and tracegym into .venv"
    python -m pip install --upgrade pip
    pip install torch==2.13.0 --index-url "$TORCH_INDEX"
    pip install -e ".[train,dev,arc]"  # README's Set-up without peers and ray (unused here)
else
    echo "using the existing .venv (after pulling changes, rerun README's pip lines there)"
fi

step "building $TRAIN 4x4 Sudoku puzzles ($DIFFICULTY) in $DATA"
tracegym data sudoku --size 4 --difficulty "$DIFFICULTY" --train "$TRAIN" --out "$DATA" \
    --overwrite

step "training a tiny TRM ($CONFIG) into $RUN"
# shellcheck disable=SC2086  # the overrides are several key=value words
tracegym train --config "$CONFIG" --data "$DATA" --out "$RUN" ${QUICKSTART_OVERRIDES:-}

step "submitting its answers to $EPISODES tracegym/Sudoku-v0 episodes (4x4, $DIFFICULTY)"
tracegym eval --checkpoint "$RUN" --env tracegym/Sudoku-v0 --episodes "$EPISODES" \
    size=4 difficulty="$DIFFICULTY" > "$RUN/eval.json"
RATE=$(python -c 'import json, sys; r = json.load(open(sys.argv[1]))
print("%d of %d solved (%.1f%%)" % (r["solved"], r["episodes"], 100 * r["solve_rate"]))' \
    "$RUN/eval.json")

step "plotting the curves"
CURVES=$(tracegym plot "$RUN")

cat <<EOF

== done
env solve rate:  $RATE
dataset:         $DATA/ (train/, test/, identifiers.json)
run:             $RUN/ (checkpoint, config, metrics.jsonl)
evaluation:      $RUN/eval.json
curves:          $CURVES
next:            . .venv/bin/activate; tracegym --help; README.md "Quick start"
EOF

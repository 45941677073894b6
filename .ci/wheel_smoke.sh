#!/usr/bin/env bash
# The package as a user of the wheel gets it: build a wheel from a clean copy of the clone,
# install it (not editable, with the train extra) into a fresh venv, import every module, and
# run the CLI from a directory outside the clone. Run by .ci/run; works on its own too.
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh
PYTHON=${PYTHON:-python3}
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy_source "$work/src"

echo "== wheel: build"
"$PYTHON" -m pip wheel -q --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/tracegym-*.whl)
echo "built $(basename "$wheel")"

echo "== wheel: install into a fresh venv"
"$PYTHON" -m venv "$work/venv"
venv="$work/venv/bin"
"$venv/python" -m pip install -q --upgrade pip
"$venv/pip" install -q torch==2.13.0 --index-url "$TORCH_CPU_INDEX"
"$venv/pip" install -q "$wheel[train]"

cd "$work"  # outside the clone: nothing can be imported from the source tree
echo "== wheel: import every module"
"$venv/python" - <<'PY'
import importlib, pkgutil, sys
import tracegym
assert tracegym.__file__.startswith(sys.prefix), f"tracegym imported from {tracegym.__file__}"
names = [m.name for m in pkgutil.walk_packages(tracegym.__path__, "tracegym.")
         if not m.name.endswith(".__main__")]  # __main__ would run the CLI
# modules that are plugins of a tool the train extra does not bring: they need that tool alone
NEEDS = {"tracegym.tracers.conformance.plugin": "pytest"}
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != NEEDS.get(name):
            raise
print(f"imported {len(names)} modules")
PY

echo "== wheel: CLI smoke"
"$venv/tracegym" --help >/dev/null
"$venv/tracegym" --version
"$venv/tracegym" data sudoku --size 4 --train 20 --test 5 --out sudoku4 --no-progress
test -s sudoku4/train/dataset.json && test -s sudoku4/test/dataset.json
puzzle='4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......'
solved=$("$venv/tracegym" solve "$puzzle")
test "$solved" = 417369825632158947958724316825437169791586432346912758289643571573291684164875293
printf 'def f(xs, k):\n    total = 0\n    for x in xs:\n        total += x * k\n    return total\n' \
    > prog.py
"$venv/tracegym" trace prog.py --entry f --args "[1, 2, 3], k=2" > trace.txt  # sandboxed
grep -q '<|return_sep|>.*"12"' trace.txt
echo "wheel smoke: ok"

#!/usr/bin/env bash
# The core (tracers, envs, datasets; no torch, whose CUDA builds for these Pythons are
# gigabytes) on the other Pythons the package claims: a fresh venv per Python with a
# non-editable install of ".[dev]", then the tracer, env and dataset tests. A Python not found
# on this machine is skipped with a message. Run by .ci/run; works on its own too.
# The versions: every one pyproject.toml claims but python3's own, which .ci/run's venv tests
# with every test. CI_PYTHONS overrides them, e.g. CI_PYTHONS="3.12" .ci/other_pythons.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy_source "$work/src"

# Test modules that import torch at the top are not collected (tests/conftest.py says which).
tests=(tests/test_tracer.py tests/test_tracer_properties.py tests/test_sandbox.py
       tests/test_cwm.py tests/test_programs.py tests/test_strategies.py
       tests/test_trace_tokenizer.py tests/test_traces_dataset.py tests/test_writer.py
       tests/test_grid.py tests/test_packaging.py tests/test_monitoring.py tests/test_layers.py
       tests/test_checks.py tests/test_io.py)
for t in tests/test_*env*.py tests/test_*dataset*.py tests/test_sudoku_*.py tests/test_maze_*.py \
         tests/test_arc_*.py; do
    [[ " ${tests[*]} " == *" $t "* ]] || tests+=("$t")
done

claimed="3.10 3.11 3.12 3.13"  # requires-python = ">=3.10"; add a version when it is released
own=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
for version in ${CI_PYTHONS:-$claimed}; do
    if [ -z "${CI_PYTHONS:-}" ] && [ "$version" = "$own" ]; then
        echo "== Python $version: python3 itself, tested by .ci/run's venv"
        continue
    fi
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        echo "== Python $version: SKIPPED, no python$version on PATH or in pyenv" \
             "(e.g. pyenv install $version)"
        continue
    fi
    echo "== Python $version ($python): install .[dev] without torch, run the core tests"
    "$python" -m venv "$work/venv$version"
    venv="$work/venv$version/bin"
    "$venv/python" -m pip install -q --upgrade pip
    "$venv/pip" install -q "$work/src[dev]"
    if "$venv/python" -c "import torch" 2>/dev/null; then
        echo "torch is installed: the core must not need it" >&2
        exit 1
    fi
    # pytest, not python -m pytest: the clone must not be on sys.path (the installed package is
    # under test, and the source tree's tracegym/ is not importable as a package on its own)
    # timeout: a hang (a call the in-process bound misses on one Python) fails, not stalls, CI
    timeout "${CI_TEST_TIMEOUT:-3600}" "$venv/pytest" -q -p no:cacheprovider "${tests[@]}"
done

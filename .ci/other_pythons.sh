#!/usr/bin/env bash
# The core (tracers, envs, datasets; no torch, whose CUDA builds for these Pythons are
# gigabytes) on the other Pythons the package claims: a fresh venv per Python with a
# non-editable install of ".[dev,peers]", then the tracer (with the conformance kit against every
# shipped adapter), env and dataset tests. A Python not found
# on this machine is skipped with a message. Run by .ci/run; works on its own too.
# The versions: every one pyproject.toml claims but python3's own, which .ci/run's venv tests
# with every test. CI_PYTHONS overrides them, e.g. CI_PYTHONS="3.12" .ci/other_pythons.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. .ci/lib.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy_source "$work/src"

# The core layers' tests, which need no torch (tests/ mirrors the packages), plus the import-graph
# and packaging checks. A test module that imports torch at the top is skipped and named
# (tests/conftest.py).
tests=(tests/core tests/tracers tests/envs tests/datasets tests/test_layers.py
       tests/test_packaging.py)

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
    echo "== Python $version ($python): install .[dev,peers] without torch, run the core tests"
    "$python" -m venv "$work/venv$version"
    venv="$work/venv$version/bin"
    "$venv/python" -m pip install -q --upgrade pip
    "$venv/pip" install -q "$work/src[dev,peers]"
    if "$venv/python" -c "import torch" 2>/dev/null; then
        echo "torch is installed: the core must not need it" >&2
        exit 1
    fi
    # pytest, not python -m pytest: the clone must not be on sys.path (the installed package is
    # under test, and the source tree's tracegym/ is not importable as a package on its own)
    # timeout: a hang (a call the in-process bound misses on one Python) fails, not stalls, CI
    timeout "${CI_TEST_TIMEOUT:-3600}" "$venv/pytest" -q -p no:cacheprovider -m "slow or not slow" "${tests[@]}"
done

# Shared by .ci/wheel_smoke.sh and .ci/other_pythons.sh; sourced, with the clone as working dir.

# copy_source DEST: the clone's files as git sees them (tracked and new, not ignored, less those
# deleted and not yet committed), so that a build starts clean: no build/, egg-info, caches or
# datasets of earlier runs.
copy_source() {
    mkdir -p "$1"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -co --exclude-standard -z \
            | while IFS= read -r -d '' f; do
                  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
              done \
            | tar --null -T - -cf - | tar -xf - -C "$1"
    else
        tar --exclude=.venv --exclude=build --exclude=dist --exclude='*.egg-info' \
            --exclude=__pycache__ --exclude='*.so' --exclude=./data --exclude=./runs \
            -cf - . | tar -xf - -C "$1"
    fi
}

# find_python X.Y: the path of a Python X.Y (pythonX.Y on PATH, else pyenv's), or nothing.
find_python() {
    local pyenv_root candidate
    pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    for candidate in "$(command -v "python$1" || true)" "$pyenv_root"/versions/"$1".*/bin/python; do
        # a pyenv shim of a version not selected fails this check, as it should
        if [ -x "$candidate" ] && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$1" ]; then
            echo "$candidate"
            return
        fi
    done
}

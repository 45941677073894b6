"""The package layout and the optional C accelerator; every other setting is in pyproject.toml.

Each layer lives in a root folder (``envs/``, ``agents/``, ...) that installs as
``tracegym.<folder>``. setuptools' own discovery names a package after its folder, so the mapping
is made here, and everything below each root is discovered: every package (a folder with an
``__init__.py``) and, as package data, every other file inside a package's folder (the Sudoku
puzzle files, the CRUXEval programs, ...). A new subpackage or data file needs no edit here.

The C recorder is built for CPython 3.11 only (other Pythons get a pure wheel); ``optional=True``:
without a compiler the build warns and goes on. Either way ``tracegym.tracers.trace`` falls back
to its pure-Python recorder.
"""

import os
import platform
import sys

from setuptools import Extension, find_packages, setup

# import name -> folder
ROOTS = {
    "tracegym": "tracegym",
    "tracegym.envs": "envs",
    "tracegym.agents": "agents",
    "tracegym.tracers": "tracers",
    "tracegym.datasets": "datasets",
    "tracegym.training": "training",
}
# Never package data: code is shipped as modules, build products and caches are not ours to ship.
NOT_DATA = (".py", ".pyc", ".pyo", ".so", ".pyd", ".c", ".nbi", ".nbc")


def _packages() -> dict[str, str]:
    """Every package under the roots -> its folder."""
    found = {}
    for name, folder in ROOTS.items():
        found[name] = folder
        for sub in find_packages(folder):
            found[f"{name}.{sub}"] = os.path.join(folder, *sub.split("."))
    return found


def _data_files(folder: str) -> list[str]:
    """Files in ``folder`` that are not code, relative to it; subpackages have their own."""
    out = []
    for here, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")) and (
            not os.path.exists(os.path.join(here, d, "__init__.py"))))
        out += [os.path.relpath(os.path.join(here, f), folder) for f in sorted(files)
                if not f.startswith(".") and not f.endswith(NOT_DATA)]
    return out


PACKAGES = _packages()

setup(
    packages=sorted(PACKAGES),
    package_dir=ROOTS,
    package_data={name: files for name, folder in PACKAGES.items()
                  if (files := _data_files(folder))},
    # package_data above is the whole list: MANIFEST.in's extra files (tests, the extension's C
    # source) go to the sdist only.
    include_package_data=False,
    ext_modules=[
        Extension("tracegym.tracers._ctrace", ["tracers/_ctrace.c"], optional=True),
    ] if platform.python_implementation() == "CPython" and sys.version_info[:2] == (3, 11) else [],
)

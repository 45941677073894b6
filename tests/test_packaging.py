"""What a non-editable install gets: the sdist and the wheel built from it hold every package and
data file of the source tree (root folders ``envs/``, ``agents/``, ... installed as
``tracegym.<folder>``), the core works without the ``train`` extra (torch), and the sandbox finds
its package folders in a wheel install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

import tracegym

REPO = Path(__file__).resolve().parents[1]
# folder in the source tree -> its place in the wheel
ROOTS = {"tracegym": "tracegym", "envs": "tracegym/envs", "agents": "tracegym/agents",
         "tracers": "tracegym/tracers", "datasets": "tracegym/datasets",
         "training": "tracegym/training"}
NOT_SHIPPED = (".pyc", ".so", ".c", ".nbi", ".nbc")  # caches, build products, the C source
# without git: what .gitignore keeps out of the tree
JUNK_DIRS = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
             ".ruff_cache", "runs"}


def _source_files(root: Path) -> list[str]:
    """The tree as git sees it (tracked and new, not ignored), else every file but the junk."""
    if (root / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                             capture_output=True, check=True).stdout.decode()
        return sorted(p for p in out.split("\0") if p and (root / p).is_file())
    files = []
    for here, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in JUNK_DIRS and not d.endswith(".egg-info")
                   and not (Path(here) == root and d == "data")]
        files += [os.path.relpath(os.path.join(here, n), root) for n in names
                  if not n.endswith((".pyc", ".so"))]
    return sorted(files)


def _build(backend_call: str, source: Path, out: Path) -> Path:
    """Run a setuptools PEP 517 hook in ``source`` (no isolation: offline, no network)."""
    code = f"import setuptools.build_meta as b; print(b.{backend_call}({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.split()[-1]


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(source files, sdist, wheel): the sdist from a copy of the tree, the wheel from the sdist
    (as pip builds one from PyPI), so a file missing from the sdist is missing from both."""
    pytest.importorskip("setuptools.build_meta", reason="the dev extra installs setuptools")
    tmp = tmp_path_factory.mktemp("dists")
    files = _source_files(REPO)
    copy = tmp / "src"
    for rel in files:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, copy / rel)
    sdist = _build("build_sdist", copy, tmp)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    unpacked = next((tmp / "unpacked").iterdir())
    wheel = _build("build_wheel", unpacked, tmp)
    return files, sdist, wheel


def test_sdist__holds_the_source_tree(dists):
    files, sdist, _ = dists
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    wanted = [f for f in files if not f.startswith(".") or f.startswith(".ci/")]
    assert "tracers/_ctrace.c" in wanted  # the extension's source, for building from the sdist
    assert [f for f in wanted if f not in names] == []  # missing: add it to MANIFEST.in


def test_wheel__holds_every_package_and_data_file_under_tracegym(dists):
    files, _, wheel = dists
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        scripts = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    expected = set()
    for f in files:
        folder, _, rest = f.partition("/")
        if folder in ROOTS and rest and not f.endswith(NOT_SHIPPED):
            expected.add(f"{ROOTS[folder]}/{rest}")
    # every package (its __init__.py), module and data file, e.g. the one the issue found missing
    assert "tracegym/agents/trace_model/__init__.py" in expected
    assert {"tracegym/envs/sudoku/data/top95.txt",
            "tracegym/tracers/data/cruxeval/cruxeval.jsonl"} <= expected
    assert sorted(expected - names) == []
    shipped = {n for n in names if n.startswith("tracegym/")}
    extra = {n for n in shipped - expected if "/_ctrace." not in n}  # the built extension
    assert sorted(extra) == []
    assert "tracegym = tracegym.cli:main" in scripts
    # torch is the `train` extra's, not a core dependency
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    assert [r for r in requires if r.startswith("Requires-Dist: torch")] == [
        'Requires-Dist: torch<3,>=2.2; extra == "train"']


def test_wheel_install__sandbox_finds_its_package_folders(dists, tmp_path):
    _, _, wheel = dists
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # a wheel install, less the console script
    # the dependencies come from this environment: its site-packages, as a plain path entry
    # (its .pth files, the editable install's finder among them, are not run)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "_deps.pth").write_text("\n".join(deps) + "\n")
    code = textwrap.dedent("""
        import json, tracegym
        from tracegym.tracers.sandbox import _package_dirs, run_source
        result = run_source("def f(x):\\n    return x + 1\\n", "f", (41,), isolation="rlimits")
        print(json.dumps({"dirs": _package_dirs(), "file": tracegym.__file__,
                          "return": result.unwrap().return_repr}))
        """)
    done = subprocess.run([python, "-s", "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, env={"PATH": os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    real_site = os.path.realpath(site)
    assert got["file"].startswith(str(site)) and got["return"] == "42"
    assert got["dirs"] and all(d.startswith(real_site + os.sep) for d in got["dirs"])


def test_core__imports_and_runs_without_the_train_extra(tmp_path):
    # torch and the rest of the `train` extra made unimportable, as in a core install
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        for name in ("torch", "safetensors", "matplotlib", "yaml"):
            sys.modules[name] = None
        import gymnasium, tracegym
        from tracegym.tracers import trace
        for package in ("tracegym", "tracegym.envs", "tracegym.tracers", "tracegym.datasets"):
            module = importlib.import_module(package)
            for info in pkgutil.walk_packages(module.__path__, package + "."):
                if info.name not in ("tracegym.__main__", "tracegym.datasets.torch_dataset") \
                        and not info.name.startswith(("tracegym.agents", "tracegym.training")):
                    importlib.import_module(info.name)  # (in a wheel, tracegym holds them all)
        env = gymnasium.make("tracegym/Sudoku-v0")
        env.reset(seed=0)
        assert trace(lambda n: n + 1, 1).frames
        try:
            from tracegym.datasets import PuzzleDataset
        except ModuleNotFoundError as exc:
            print(exc)
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "needs torch, which the `train` extra installs" in done.stdout


def test_import_tracegym__does_not_import_torch(tmp_path):
    code = "import sys, tracegym, tracegym.datasets; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "False"
    assert tracegym.__version__

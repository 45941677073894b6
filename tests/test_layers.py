"""The layers import one way: core <- tracers <- envs <- datasets; agents on core and tracers;
training on everything; the CLI on top.

Every import statement of the package is read with :mod:`ast` (at module level and inside
functions, where the lazy imports hide) plus ``importlib.import_module("literal")`` calls, and an
edge that points up the order fails the test, naming file, line and module.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LAYERS = ("core", "tracers", "envs", "datasets", "agents", "training", "cli")
# what each layer may import besides itself
ALLOWED = {
    "core": {"core"},
    "tracers": {"core"},
    "envs": {"core", "tracers"},
    "datasets": {"core", "tracers", "envs"},
    "agents": {"core", "tracers"},
    "training": {"core", "tracers", "envs", "datasets", "agents"},
    "cli": set(LAYERS),
}
CLI_MODULES = {"tracegym.cli", "tracegym.__main__"}


def layer_of(module: str) -> str | None:
    """The layer of a ``tracegym`` module name, None for modules outside the package."""
    parts = module.split(".")
    if parts[0] != "tracegym":
        return None
    if module in CLI_MODULES:
        return "cli"
    if len(parts) > 1 and parts[1] in LAYERS[1:-1]:
        return parts[1]
    return "core"


def package_files() -> list[tuple[str, Path]]:
    """``(module name, file)`` of every module of the package, wherever its folders are."""
    found = []
    roots = {"tracegym": Path(importlib.util.find_spec("tracegym").origin).parent}
    for layer in LAYERS[1:-1]:
        spec = importlib.util.find_spec(f"tracegym.{layer}")  # not imported, only located
        roots[f"tracegym.{layer}"] = Path(spec.submodule_search_locations[0])
    for package, root in roots.items():
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root).with_suffix("").parts
            if package == "tracegym" and relative[0] in LAYERS:
                continue  # a layer folder inside tracegym/ (a wheel's layout): walked as its own
            if relative[-1] == "__init__":
                relative = relative[:-1]
            found.append((".".join((package, *relative)), path))
    return found


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from tracegym import envs` imports the subpackage: count the names as modules
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and node.args[0].value.startswith("tracegym")):
            found.append((node.lineno, node.args[0].value))
    return found


def upward_edges() -> list[str]:
    bad = []
    for module, path in package_files():
        source_layer = layer_of(module)
        for line, target in imports_of(module, path):
            target_layer = layer_of(target)
            if target_layer is None or target_layer == source_layer:
                continue
            if target_layer not in ALLOWED[source_layer]:
                bad.append(f"{path.name}:{line} {module} ({source_layer}) imports {target} "
                           f"({target_layer})")
    return bad


def test_layer_of():
    assert layer_of("tracegym.errors") == "core"
    assert layer_of("tracegym.cli") == "cli"
    assert layer_of("tracegym.envs.sudoku.solver") == "envs"
    assert layer_of("tracegym.training.cli") == "training"
    assert layer_of("numpy") is None


def test_imports_of__resolves_relative_and_lazy_imports(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text(textwrap.dedent("""
        from . import board
        from ..common import x
        def f():
            from tracegym.training import checkpoint
            importlib.import_module("tracegym.envs")
        """))
    found = [name for _, name in imports_of("tracegym.datasets.sudoku.mod", path)]
    assert found == ["tracegym.datasets.sudoku.board", "tracegym.datasets.common.x",
                     "tracegym.training.checkpoint", "tracegym.envs"]


def test_package_files__cover_every_layer():
    layers = {layer_of(module) for module, _ in package_files()}
    assert layers == set(LAYERS)


def test_imports_point_down_the_layers():
    bad = upward_edges()
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, absent", [
    ("tracegym", ("gymnasium", "numpy", "tracegym.envs", "tracegym.tracers")),
    ("tracegym.tracers", ("gymnasium", "tracegym.envs", "torch")),
    ("tracegym.tracers.trace", ("gymnasium", "tracegym.envs", "torch")),
])
def test_import__loads_no_higher_layer(module, absent, tmp_path):
    code = f"import sys, {module}; print([m for m in {absent!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_import_of_one_env__registers_every_env(tmp_path):
    code = textwrap.dedent("""
        import gymnasium
        import tracegym.envs.sudoku.board
        print(sorted(k for k in gymnasium.registry if k.startswith("tracegym/")))
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == str(["tracegym/ARC-v0", "tracegym/ExecTrace-v0",
                                       "tracegym/Maze-v0", "tracegym/Sudoku-v0"])


def test_gym_make__with_the_module_prefix_needs_no_import(tmp_path):
    code = 'import gymnasium; print(gymnasium.make("tracegym.envs:tracegym/Sudoku-v0").spec.id)'
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "tracegym/Sudoku-v0"

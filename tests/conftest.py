import ast
import importlib.util
import os
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Without the `train` extra (torch, ...: a core install, as in CI's runs on other Pythons), a
# test module importing it at module level is skipped whole, with the reason.
_TRAIN_EXTRA = ("torch", "safetensors", "matplotlib", "yaml")
_MISSING = {name for name in _TRAIN_EXTRA if importlib.util.find_spec(name) is None}
if "torch" in _MISSING:
    _MISSING |= {"tracegym.agents", "tracegym.training", "tracegym.datasets.torch_dataset",
                 "tracegym.datasets.PuzzleDataset"}


def _module_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_bytes(), str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


class _NeedsTrainExtra(pytest.Module):
    needs = ""

    def collect(self):
        pytest.skip(f"{self.path.name} imports {self.needs}, which the `train` extra "
                    "installs (pip install -e '.[train]')")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent):
    if not _MISSING:
        return None
    needs = sorted(name for name in _module_imports(module_path)
                   if any(name == m or name.startswith(m + ".") for m in _MISSING))
    if not needs:
        return None
    module = _NeedsTrainExtra.from_parent(parent, path=module_path)
    module.needs = needs[0]
    return module


TOP95 = Path(__file__).resolve().parents[1] / "envs" / "sudoku" / "data" / "top95.txt"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("learning")``: benchmarks/learning.py as a module (the scripts are
    not a package), loaded once per name."""
    loaded = {}

    def load(name: str):
        if name not in loaded:
            spec = importlib.util.spec_from_file_location(f"{name}_benchmark",
                                                          BENCHMARKS / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # dataclasses look their module up there
            spec.loader.exec_module(module)
            loaded[name] = module
        return loaded[name]

    return load


@pytest.fixture(scope="session")
def top95_lines() -> list[str]:
    return TOP95.read_text().split()


@pytest.fixture(scope="session")
def small_puzzles():
    """Twenty fixed 4x4 puzzles with their solutions (a fixed-board source for env tests)."""
    from tracegym.envs.sudoku.generator import SudokuGenerator

    puzzles, solutions, _ = SudokuGenerator(4, "medium").generate_arrays(seed=11, count=20)
    return puzzles, solutions


# A TRM small enough for a few CPU steps a second on `sudoku4`: one mixer block, one recursion,
# 2 supervision steps, so the halting exploration draws random numbers (resume must restore the
# RNG). A constant, not a fixture: the DDP tests' spawned workers build their configs from it
# (`from conftest import TINY_TRM`); read-only, so no test changes it for the others.
TINY_TRM = MappingProxyType({"dim": 16, "depth": 1, "heads": 2, "N_sup": 2, "H_cycles": 1,
                             "L_cycles": 1, "multiple_of": 16})


@pytest.fixture(scope="module")
def sudoku4(tmp_path_factory):
    """A small 4x4 Sudoku dataset (48 train, 16 test) for the training tests."""
    from tracegym.datasets.sudoku import build_sudoku_dataset

    out = tmp_path_factory.mktemp("data") / "sudoku4"
    build_sudoku_dataset(out, size=4, difficulty="easy", train=48, test=16, seed=0,
                         progress=False)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """torch on one intra-op thread for a module of tiny models (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): with several threads on a shared machine the time
    goes to thread hand-offs (token-by-token decoding ran 10-30x slower), not arithmetic."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_foreign_tracer():
    """Run each test with no settrace function installed, and put back the one found.

    On Python 3.10 and 3.11 the tracer refuses to hide another trace function (coverage run by
    pytest-cov, a debugger): under one, every traced call would raise TracerConflictError. The
    tests that are about another tracer install their own. (Here, not in tests/tracers/: two
    conftest modules would shadow each other's ``from conftest import ...``.)
    """
    prior = sys.gettrace()
    if prior is None or sys.version_info >= (3, 12):  # 3.12+: sys.monitoring runs beside it
        yield
        return
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(prior)

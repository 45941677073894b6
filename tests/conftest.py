import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TOP95 = Path(__file__).resolve().parents[1] / "envs" / "sudoku" / "data" / "top95.txt"


@pytest.fixture(scope="session")
def top95_lines() -> list[str]:
    return TOP95.read_text().split()


@pytest.fixture(scope="session")
def small_puzzles():
    """Twenty fixed 4x4 puzzles with their solutions (a fixed-board source for env tests)."""
    from tracegym.envs.sudoku.generator import SudokuGenerator

    puzzles, solutions, _ = SudokuGenerator(4, "medium").generate_arrays(seed=11, count=20)
    return puzzles, solutions


def assert_valid_solution(solution: np.ndarray, puzzle: np.ndarray) -> None:
    from tracegym.envs.sudoku.board import is_valid_solution

    assert is_valid_solution(solution, puzzle)

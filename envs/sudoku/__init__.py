"""Sudoku: boards of 4x4, 6x6, 9x9 and 16x16 with a generator, a solver and a Gymnasium env.

Importing this package registers ``tracegym/Sudoku-v0``; the heavy modules (numba solver,
generator, env) load on first use.
"""

from gymnasium.envs.registration import register

# tracegym/Sudoku-v0: 9x9, "medium" generated puzzles, step mode, illegal write -0.1,
# max_steps 2 * n * n; options size, difficulty, puzzles, mode, illegal_action, render_mode.
register(
    id="tracegym/Sudoku-v0",
    entry_point="tracegym.envs.sudoku.env:SudokuEnv",
    vector_entry_point="tracegym.envs.sudoku.vector_env:SudokuVectorEnv",
)

# Public names, loaded on first access so `import tracegym` stays light.
_EXPORTS = {
    "SudokuEnv": "env", "SudokuVectorEnv": "vector_env", "SudokuGenerator": "generator",
    "GeneratedPuzzle": "generator", "require_unique": "generator", "solve": "solver",
    "count_solutions": "solver", "solve_batch": "solver", "parse_puzzle": "board",
    "format_puzzle": "board", "read_puzzles": "board", "is_valid_solution": "board",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

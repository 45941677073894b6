"""Mazes: perfect mazes (backtracker, Kruskal) and Maze-Hard, a BFS verifier and a Gymnasium env.

Importing this package registers ``tracegym/Maze-v0``; the heavy modules load on first use.
"""

from gymnasium.envs.registration import register

# tracegym/Maze-v0: 30x30 "hard" mazes (shortest path > 110 moves), step mode, no per-step cost,
# max_steps 4 * size * size; options size, kind, mazes, mode, render_mode.
register(
    id="tracegym/Maze-v0",
    entry_point="tracegym.envs.maze.env:MazeEnv",
    vector_entry_point="tracegym.envs.maze.vector_env:MazeVectorEnv",
)

# Public names, loaded on first access so `import tracegym` stays light.
_EXPORTS = {
    "MazeEnv": "env", "MazeVectorEnv": "vector_env", "MazeGenerator": "generator",
    "GeneratedMaze": "generator", "parse_maze": "board", "format_maze": "board",
    "read_mazes": "board", "write_mazes": "board", "solve_batch": "solver",
    "shortest_path": "solver", "path_verdict": "solver", "count_shortest_paths": "solver",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

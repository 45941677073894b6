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

"""tracegym: puzzle-reasoning and code-execution environments, datasets and models.

``import tracegym`` is light: it imports no layer. The environments register with Gymnasium when
their layer is imported::

    import gymnasium as gym
    import tracegym.envs  # registers tracegym/Sudoku-v0, Maze-v0, ARC-v0, ExecTrace-v0

    env = gym.make("tracegym/Sudoku-v0")

(or, with no import, ``gym.make("tracegym.envs:tracegym/Sudoku-v0")``). The tracer layer
(``tracegym.tracers``) needs neither Gymnasium nor the envs.
"""

__version__ = "0.1.0"

"""tracegym: puzzle-reasoning and code-execution environments, datasets and models.

``import tracegym`` registers every environment found under ``tracegym.envs`` (each env package
registers itself on import), so ``gymnasium.make("tracegym/Sudoku-v0")`` works afterwards. A new
environment is a new folder in ``envs/``; nothing here needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil

__version__ = "0.1.0"


def _register_envs() -> None:
    from tracegym import envs

    for module in pkgutil.iter_modules(envs.__path__):
        if module.ispkg:
            importlib.import_module(f"tracegym.envs.{module.name}")


_register_envs()

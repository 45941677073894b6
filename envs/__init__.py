"""The environments: one package per task (``sudoku``, ``maze``, ``arc``, ``exectrace``).

Importing ``tracegym.envs`` (or any module in it) registers every environment with Gymnasium:
each task package registers its ids when imported, and this loop imports them all, so
``gymnasium.make("tracegym/Maze-v0")`` works after ``import tracegym.envs.sudoku`` too. The
task packages stay light (the registrations and lazy names); their heavy modules load on use. A
new environment is a new folder here; nothing else needs editing.
"""

import importlib

from tracegym.packages import subpackages

for _task in subpackages(__name__):
    importlib.import_module(f"{__name__}.{_task}")

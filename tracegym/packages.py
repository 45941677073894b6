"""The subpackages of a tracegym package, listed from disk without importing them.

Importing an env package registers it with Gymnasium (and the env layer pays for Gymnasium), so
code that only needs the names (the CLI's catalog, the Trainer's task check, the registration
loop itself) lists the folders instead.
"""

from __future__ import annotations

import importlib.util
import pkgutil


def subpackages(package: str) -> list[str]:
    """Sorted names of the subpackages of ``package`` (e.g. ``"tracegym.envs"`` -> ``["arc",
    "exectrace", "maze", "sudoku"]``); ``package`` itself is not imported, only its parents."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"no package named {package!r}", name=package)
    return sorted(info.name for info in pkgutil.iter_modules(spec.submodule_search_locations)
                  if info.ispkg)

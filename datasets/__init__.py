"""Dataset builders: puzzles and traces -> arrays in the TRM layout plus Parquet; torch Datasets.

``tracegym.datasets.<task>`` builds one task's dataset (``tracegym data <task>`` on the command
line); :mod:`.writer` holds the layout shared by every task and :mod:`.torch_dataset` reads it.
Names below load on first use, so importing this package pulls in neither torch nor pyarrow.
"""

from __future__ import annotations

import importlib

# public name -> submodule defining it
_EXPORTS = {
    "PuzzleDataset": "torch_dataset",
    "DatasetMetadata": "writer",
    "SplitData": "writer",
    "check_output_dir": "writer",
    "read_split": "writer",
    "write_dataset": "writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""What a reasoner needs to know about a task: vocabulary, sequence length, special ids.

>>> TASKS["sudoku"].vocab_size, TASKS["sudoku"].seq_len
(11, 81)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """Token layout of one task (the TRM dataset layout: pad 0, labels equal to 0 ignored).

    Args:
        name (str): "sudoku", "maze", "arc", or any custom name.
        vocab_size (int): number of token ids, pad included.
        seq_len (int): tokens per input (and per label) sequence.
        num_puzzle_identifiers (int, default 1): rows of the per-puzzle embedding (ARC: one per
            augmented task); 1 means only the blank identifier 0.
        pad_id (int, default 0): id of padding in inputs.
        ignore_label_id (int, default 0): labels equal to this id carry no loss; -100 ignores none.
    """

    name: str
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int = 1
    pad_id: int = 0
    ignore_label_id: int = 0

    def __post_init__(self):
        for field in ("vocab_size", "seq_len", "num_puzzle_identifiers"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TaskSpec.{field} must be a positive int, got {value!r}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"TaskSpec.pad_id must be in 0..{self.vocab_size - 1}, "
                             f"got {self.pad_id!r}")

    @classmethod
    def from_metadata(cls, name: str, metadata: dict) -> TaskSpec:
        """A spec from a split's ``dataset.json`` dict (see datasets/writer.py)."""
        missing = [k for k in ("vocab_size", "seq_len") if k not in metadata]
        if missing:
            raise ValueError(f"metadata lacks {missing} (fields found: {sorted(metadata)})")
        ignore = metadata.get("ignore_label_id", 0)
        return cls(
            name=name,
            vocab_size=int(metadata["vocab_size"]),
            seq_len=int(metadata["seq_len"]),
            num_puzzle_identifiers=int(metadata.get("num_puzzle_identifiers", 1)),
            pad_id=int(metadata.get("pad_id", 0)),
            # HRM-era datasets may write null: nothing is ignored then
            ignore_label_id=-100 if ignore is None else int(ignore),
        )


# The token layouts of envs/sudoku/tokens.py, envs/maze/tokens.py and envs/arc/tokens.py, written
# out so the agents need not import the envs: Sudoku n x n -> vocab n + 2, seq n*n; maze and ARC
# on a 30 x 30 canvas (maze cell codes 1..5, ARC colours 2..11 with 1 the end-of-grid marker).
# tests/test_reasoners.py checks them against the envs.
TASKS: dict[str, TaskSpec] = {
    "sudoku": TaskSpec("sudoku", vocab_size=11, seq_len=81),
    "sudoku4": TaskSpec("sudoku4", vocab_size=6, seq_len=16),
    "sudoku6": TaskSpec("sudoku6", vocab_size=8, seq_len=36),
    "maze": TaskSpec("maze", vocab_size=6, seq_len=900),
    "arc": TaskSpec("arc", vocab_size=12, seq_len=900),
}


def resolve_task(task: TaskSpec | str | dict) -> TaskSpec:
    """A ``TaskSpec`` from a spec, a name in ``TASKS``, or a dict of fields (a stored config)."""
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid names: {', '.join(TASKS)} "
                             f"(or pass a TaskSpec)")
        return TASKS[task]
    if isinstance(task, dict):
        return TaskSpec(**task)
    raise ValueError(f"task must be a TaskSpec, a name or a dict, got {type(task).__name__}")

"""What a reasoner needs to know about a task: vocabulary, sequence length, special ids.

The agents do not know the envs (they import only the core and the tracers), so a task's spec
comes from above: the Trainer reads it from the dataset (``TaskSpec.from_metadata``), and
``tracegym.training.tasks.task_spec("sudoku4")`` builds it from the env's agent I/O module.

>>> TaskSpec("sudoku4", vocab_size=6, seq_len=16).seq_len
16
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


def resolve_task(task: TaskSpec | dict) -> TaskSpec:
    """A ``TaskSpec`` from a spec or a dict of its fields (a stored config)."""
    if isinstance(task, TaskSpec):
        return task
    if isinstance(task, dict):
        return TaskSpec(**task)
    if isinstance(task, str):  # the envs know the names; this layer may not import them
        raise ValueError(f"task {task!r}: pass a TaskSpec; "
                         f"tracegym.training.tasks.task_spec({task!r}) builds it from the env")
    raise ValueError(f"task must be a TaskSpec or a dict, got {type(task).__name__}")

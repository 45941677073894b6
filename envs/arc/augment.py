"""ARC augmentations (dihedral symmetry + colour permutation) and TRM's pass@2 voting.

TRM trains and evaluates on many augmented copies of each task. At test time the model answers
every copy; each answer is mapped back through the inverse augmentation, identical answers are
counted, and the two most frequent are submitted (ARC scores a task right when either of two
attempts matches). See ``aug``/``inverse_aug`` in TRM's ``dataset/build_arc_dataset.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tracegym.envs.arc.constants import NUM_COLOURS
from tracegym.envs.arc.data import ArcTask
from tracegym.grid import dihedral, inverse_dihedral

_IDENTITY_PERM = tuple(range(NUM_COLOURS))


@dataclass(frozen=True)
class ArcAugmentation:
    """Colour ``c`` -> ``colour_perm[c]``, then ``dihedral(., k)`` (the two commute), as TRM's
    ``dihedral_transform(mapping[grid], k)`` (:func:`tracegym.grid.dihedral` uses its numbering).

    Frozen and hashable (the permutation is kept as a tuple), so augmentations can be deduplicated
    in a set.

    >>> import numpy as np
    >>> aug = ArcAugmentation(1, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    >>> aug.apply(np.array([[1, 2]], dtype=np.int8)).tolist()
    [[1], [2]]
    >>> aug.inverse().apply(aug.apply(np.array([[1, 2]], dtype=np.int8))).tolist()
    [[1, 2]]
    """

    k: int = 0
    colour_perm: tuple[int, ...] = field(default=_IDENTITY_PERM)

    def __post_init__(self) -> None:
        if not 0 <= self.k < 8:
            raise ValueError(f"k must be in 0..7, got {self.k}")
        perm = tuple(int(c) for c in np.asarray(self.colour_perm).ravel())
        if sorted(perm) != list(_IDENTITY_PERM):
            raise ValueError(
                f"colour_perm must be a permutation of 0..{NUM_COLOURS - 1}, got {perm}"
            )
        # Normalise arrays/lists to a tuple so equality and hashing work.
        object.__setattr__(self, "colour_perm", perm)

    @property
    def is_identity(self) -> bool:
        return self.k == 0 and self.colour_perm == _IDENTITY_PERM

    def apply(self, grid: np.ndarray) -> np.ndarray:
        """The augmented copy of an int grid (colours 0..9), as int8."""
        lut = np.array(self.colour_perm, dtype=np.int8)
        return np.ascontiguousarray(dihedral(lut[np.asarray(grid, dtype=np.intp)], self.k))

    def inverse(self) -> ArcAugmentation:
        """The augmentation that undoes this one."""
        return ArcAugmentation(inverse_dihedral(self.k), tuple(np.argsort(self.colour_perm)))

    def apply_task(self, task: ArcTask) -> ArcTask:
        """The same transform on every grid of ``task``; hidden outputs stay ``None``."""

        def pair(p):
            grid_in, grid_out = p
            return self.apply(grid_in), None if grid_out is None else self.apply(grid_out)

        return ArcTask(
            task.task_id, tuple(pair(p) for p in task.train), tuple(pair(p) for p in task.test)
        )


IDENTITY = ArcAugmentation()

# TRM's puzzle names (``PuzzleIdSeparator`` in its build_arc_dataset.py): an augmented copy of task
# T is "T|||t<k>|||<perm>", k the dihedral index, perm the 10 digits colour_perm[0..9]
SEPARATOR = "|||"


def augmentation_name(task_id: str, aug: ArcAugmentation | None) -> str:
    """TRM's puzzle name of ``task_id``'s copy under ``aug`` (the bare id for the original: None
    or the identity).

    >>> augmentation_name("007bbfb7", ArcAugmentation(6, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9)))
    '007bbfb7|||t6|||0213456789'
    """
    if aug is None or aug.is_identity:
        return task_id
    return f"{task_id}{SEPARATOR}t{aug.k}{SEPARATOR}{''.join(map(str, aug.colour_perm))}"


def parse_augmentation_name(name: str) -> tuple[str, ArcAugmentation]:
    """``(task_id, augmentation)`` of a puzzle name (:func:`augmentation_name`'s inverse); a
    bare task id gives :data:`IDENTITY`. A malformed name raises ValueError naming it."""
    parts = name.rsplit(SEPARATOR, 2)
    if len(parts) == 1:
        return name, IDENTITY
    if len(parts) == 3 and parts[1][:1] == "t" and parts[1][1:].isdigit() \
            and len(parts[2]) == NUM_COLOURS and parts[2].isdigit():
        return parts[0], ArcAugmentation(int(parts[1][1:]), tuple(int(c) for c in parts[2]))
    raise ValueError(f"name: expected <task> or <task>{SEPARATOR}t<k>{SEPARATOR}<10 colour "
                     f"digits>, got {name!r}")


def random_augmentation(rng: np.random.Generator, keep_black: bool = True) -> ArcAugmentation:
    """A uniform random augmentation; ``keep_black`` keeps colour 0 (background) fixed, as TRM."""
    k = int(rng.integers(8))
    if keep_black:
        perm = (0, *(int(c) for c in rng.permutation(np.arange(1, NUM_COLOURS))))
    else:
        perm = tuple(int(c) for c in rng.permutation(NUM_COLOURS))
    return ArcAugmentation(k, perm)


def num_augmentations(keep_black: bool = True) -> int:
    """How many non-identity augmentations exist: 8 symmetries x colour permutations, minus one."""
    return 8 * math.factorial(NUM_COLOURS - 1 if keep_black else NUM_COLOURS) - 1


def augmentations(
    count: int, rng: np.random.Generator, keep_black: bool = True
) -> list[ArcAugmentation]:
    """``count`` distinct non-identity augmentations, drawn by rejection.

    Distinct transforms can still give identical copies of a task (a symmetric grid, unused
    colours); TRM drops those by hashing the augmented task, which is the caller's choice here.
    """
    limit = num_augmentations(keep_black)
    if not 0 <= count <= limit:
        raise ValueError(f"count must be in 0..{limit} (keep_black={keep_black}), got {count}")
    seen: set[ArcAugmentation] = set()
    out = []
    while len(out) < count:
        aug = random_augmentation(rng, keep_black)
        if not aug.is_identity and aug not in seen:
            seen.add(aug)
            out.append(aug)
    return out


MAX_DRAWS_PER_COPY = 5  # TRM's ARCAugmentRetriesFactor


def task_grids(task: ArcTask) -> list[np.ndarray]:
    """Every known grid of ``task`` in a fixed order: each train pair, then each test pair."""
    return [g for pair in (*task.train, *task.test) for g in pair if g is not None]


def distinct_copies(task: ArcTask, count: int, rng: np.random.Generator,
                    keep_black: bool = True) -> list[ArcAugmentation]:
    """Up to ``count`` augmentations whose copies of ``task`` all differ, from each other and
    from ``task`` itself, as TRM builds its ARC data.

    A symmetric grid or an unused colour makes distinct transforms give the same copy; those
    draws are skipped. Like TRM, stop after ``MAX_DRAWS_PER_COPY * count`` draws, so a task with
    few distinct copies (a single-colour 1x1 grid has none) gets fewer than ``count``.
    """
    limit = num_augmentations(keep_black)
    if not 0 <= count <= limit:
        raise ValueError(f"count must be in 0..{limit} (keep_black={keep_black}), got {count}")
    grids = task_grids(task)
    # each symmetry's image of the task as (shapes, cells): a colour lookup finishes any copy
    images = []
    for k in range(8):
        moved = [dihedral(g, k) for g in grids]
        images.append((np.array([g.shape for g in moved], np.int8).tobytes(),
                       np.concatenate([g.ravel() for g in moved]).astype(np.intp)))
    seen = {images[0][0] + images[0][1].astype(np.int8).tobytes()}
    out: list[ArcAugmentation] = []
    for _ in range(MAX_DRAWS_PER_COPY * count):
        if len(out) == count:
            break
        aug = random_augmentation(rng, keep_black)
        shapes, cells = images[aug.k]
        key = shapes + np.array(aug.colour_perm, np.int8)[cells].tobytes()
        if key not in seen:
            seen.add(key)
            out.append(aug)
    return out


def _key(grid: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    grid = np.ascontiguousarray(grid, dtype=np.int8)
    return grid.shape, grid.tobytes()


def vote(
    predictions: Sequence[np.ndarray | None], augs: Sequence[ArcAugmentation]
) -> list[np.ndarray]:
    """Up to two answers for the original task, most voted first.

    ``predictions[i]`` answers the copy made by ``augs[i]`` (use ``IDENTITY`` for the original);
    ``None`` (no parsable answer) casts no vote. Ties go to the answer seen first.
    """
    if len(predictions) != len(augs):
        raise ValueError(
            f"predictions and augs must have equal length, got {len(predictions)} and {len(augs)}"
        )
    counts: dict[tuple, int] = {}  # dicts keep insertion order, which breaks ties
    grids: dict[tuple, np.ndarray] = {}
    for pred, aug in zip(predictions, augs):
        if pred is None:
            continue
        grid = aug.inverse().apply(pred)
        key = _key(grid)
        counts[key] = counts.get(key, 0) + 1
        grids.setdefault(key, grid)
    # sorted() is stable, so equal counts keep first-appearance order.
    ranked = sorted(counts, key=lambda key: -counts[key])
    return [grids[key] for key in ranked[:2]]


def pass_at_2(candidates: Sequence[np.ndarray], target: np.ndarray) -> bool:
    """ARC's rule: right when either of at most two candidates equals ``target`` (shape too)."""
    if len(candidates) > 2:
        raise ValueError(f"candidates: at most 2 attempts allowed, got {len(candidates)}")
    target_key = _key(target)
    return any(_key(c) == target_key for c in candidates)

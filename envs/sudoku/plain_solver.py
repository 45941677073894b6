"""A Sudoku solver in plain Python, for one puzzle without the compiled solver's start-up.

``tracegym solve PUZZLE`` solves a single puzzle. The compiled solver (:mod:`.solver`) does that
in microseconds, but loading numba and its cached machine code costs about half a second per
process, far more than the search. This module runs the same kind of search in Python ints:
candidate bit masks per cell, naked and hidden singles to a fixpoint, then a branch on the open
cell with the fewest candidates. Typical puzzles take a few milliseconds here; the hardest of
top95 a few hundred search nodes. A search that needs more than ``max_nodes`` nodes gives up
(:class:`SearchBudgetExceeded`) so the caller can hand the puzzle to the compiled solver, whose
start-up is then worth paying.

This module imports neither numba nor numpy: the point is the import cost.
"""

from __future__ import annotations

import functools

from tracegym.errors import TracegymError

# size -> (box rows, box cols); the same table as board.BOX_SHAPES, kept here without numpy
BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3), 16: (4, 4)}
DEFAULT_MAX_NODES = 4_000  # about 0.3 s of Python; the hardest of top95 needs under 500


class SearchBudgetExceeded(Exception):
    """The search visited ``max_nodes`` nodes without an answer (a hand-over, not an error)."""


@functools.cache
def _layout(n: int) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """``(units, peers)`` of an ``n x n`` board: rows, columns, boxes; each cell's peers."""
    box_rows, box_cols = BOX_SHAPES[n]
    rows = [tuple(r * n + c for c in range(n)) for r in range(n)]
    cols = [tuple(r * n + c for r in range(n)) for c in range(n)]
    boxes = [tuple((br + r) * n + bc + c for r in range(box_rows) for c in range(box_cols))
             for br in range(0, n, box_rows) for bc in range(0, n, box_cols)]
    units = tuple(rows + cols + boxes)
    peers = [set() for _ in range(n * n)]
    for unit in units:
        for cell in unit:
            peers[cell].update(unit)
    return units, tuple(tuple(sorted(p - {cell})) for cell, p in enumerate(peers))


def count_solutions(cells: list[int], n: int, limit: int = 2,
                    max_nodes: int = DEFAULT_MAX_NODES) -> tuple[int, list[int] | None, int]:
    """Count the solutions of a flat row-major puzzle (0 blank), stopping at ``limit``.

    Returns ``(count, first_solution, nodes)``; ``nodes`` counts propagations, the root included.
    Clashing givens count as no solution (the caller checks givens first to say which clash).
    Raises :class:`SearchBudgetExceeded` after ``max_nodes`` nodes.
    """
    if n not in BOX_SHAPES:
        raise TracegymError(f"size must be one of {list(BOX_SHAPES)}, got {n!r}")
    if len(cells) != n * n:
        raise TracegymError(f"cells: expected {n * n} values for size {n}, got {len(cells)}")
    units, peers = _layout(n)
    full = (1 << n) - 1
    masks = [full] * (n * n)
    solutions: list[list[int]] = []
    nodes = 0

    def place(masks: list[int], cell: int, bit: int, pending: list[int]) -> bool:
        """Put the digit ``bit`` in ``cell``; False if a peer loses its last candidate."""
        masks[cell] = bit
        for peer in peers[cell]:
            mask = masks[peer]
            if mask & bit:
                mask ^= bit
                if not mask:
                    return False
                masks[peer] = mask
                if not mask & (mask - 1):
                    pending.append(peer)
        return True

    def propagate(masks: list[int], pending: list[int], placed: list[bool]) -> bool:
        """Naked and hidden singles until nothing changes; False on a contradiction."""
        while True:
            while pending:
                cell = pending.pop()
                if placed[cell]:
                    continue
                placed[cell] = True
                if not place(masks, cell, masks[cell], pending):
                    return False
            for unit in units:  # hidden singles: a digit with one place left in a unit
                seen = twice = done = 0
                for cell in unit:
                    mask = masks[cell]
                    if placed[cell]:
                        done |= mask
                    else:
                        twice |= seen & mask
                        seen |= mask
                if (seen | done) != full:
                    return False  # a digit with no place in this unit
                hidden = seen & ~twice & ~done
                while hidden:
                    bit = hidden & -hidden
                    hidden ^= bit
                    for cell in unit:
                        if masks[cell] & bit and not placed[cell]:
                            if masks[cell] != bit:
                                masks[cell] = bit
                            pending.append(cell)
                            break
            if not pending:
                return True

    def search(masks: list[int], pending: list[int], placed: list[bool]) -> bool:
        """True when the limit is reached (stop everything)."""
        nonlocal nodes
        nodes += 1
        if nodes > max_nodes:
            raise SearchBudgetExceeded(f"no answer within {max_nodes} search nodes")
        if not propagate(masks, pending, placed):
            return False
        best, best_count = -1, n + 1
        for cell, mask in enumerate(masks):
            if not placed[cell]:
                count = mask.bit_count()
                if count < best_count:
                    best, best_count = cell, count
                    if count == 2:
                        break
        if best < 0:
            solutions.append([mask.bit_length() for mask in masks])
            return len(solutions) >= limit
        options = masks[best]
        while options:
            bit = options & -options
            options ^= bit
            branch = masks.copy()
            branch[best] = bit
            if search(branch, [best], placed.copy()):
                return True
        return False

    pending = []
    for cell, value in enumerate(cells):
        if value:
            if not 1 <= value <= n:
                raise TracegymError(f"cells[{cell}] must be in 0..{n}, got {value!r}")
            masks[cell] = 1 << (value - 1)
            pending.append(cell)
    search(masks, pending, [False] * (n * n))
    return len(solutions), (solutions[0] if solutions else None), nodes

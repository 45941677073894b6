"""9x9 Sudoku core on bit-boards: what :mod:`.solver` runs for every 9x9 puzzle.

Representation (as in JCZSolve and tdoku's simpler relatives): the board is three *bands* of three
rows, 27 cells each, one bit per cell (bit ``9*r + c`` for row ``r`` of the band, column ``c``).
The whole search state is 30 int64 words:

- ``state[3*d + b]``: the cells of band ``b`` where digit ``d+1`` is still possible, the cells
  already holding ``d+1`` included (so every row, column and box of a consistent state keeps at
  least one bit of every digit);
- ``state[27 + b]``: the cells of band ``b`` not placed yet.

A branch copies 240 bytes; no per-cell loop runs in the common path. Propagation, to a fixpoint:

- *band update* of one (digit, band) word: its 3x3 *shape* (which box each row of the band can
  still use for the digit) goes through a 512-entry table to the cells compatible with some
  placement of the digit's three band cells (one per row, one per box). This is the box-line
  (locked candidate) rule along rows, pointing and claiming both, and it finds the contradiction
  of a row or box with no place left; a row left with one cell is a hidden single (a box left
  with one cell leaves its row with one, so box singles come out here too). A placement clears
  the cell from the other digits and the column from the digit's other bands, and queues the
  (digit, band) words it changed;
- *naked singles* (a cell with one digit left) and *hidden singles in columns*, by bit-sliced
  counting over the nine digit words of a band (and over the nine rows of a digit): the generic
  core's deductions are all here, so a puzzle it solves without guessing needs no guess here
  either.

When propagation stalls the search branches on the first cell (row-major) with two candidates,
else on the first with the fewest, digits in increasing order, as :mod:`.solver` does. ``nodes``
and ``guesses`` keep their meaning (propagations with the root included; branches taken), but the
stronger propagation makes both smaller than the generic core's on the same puzzle.
"""

from __future__ import annotations

import numba
import numpy as np

FULL = (1 << 27) - 1  # all cells of a band
_ALL_WORDS = (1 << 27) - 1  # every (digit, band) word queued: the root's first propagation


def _tables():
    row_boxes = np.zeros(512, dtype=np.int64)  # 9-bit row -> the boxes (3 bits) it touches
    row_single = np.zeros(512, dtype=np.int64)  # 9-bit row -> itself if one bit, else 0
    for x in range(512):
        row_boxes[x] = sum(1 << k for k in range(3) if (x >> (3 * k)) & 7)
        row_single[x] = x if x and not x & (x - 1) else 0
    perms = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    # band shape (bit 3r+k: row r may use box k) -> cells of the (r, k) pairs of every placement
    # (row r -> box p[r]) the shape allows; 0 when none does (a contradiction)
    band_mask = np.zeros(512, dtype=np.int64)
    for shape in range(512):
        keep = 0
        for p in perms:
            if all((shape >> (3 * r + p[r])) & 1 for r in range(3)):
                keep |= sum(7 << (9 * r + 3 * p[r]) for r in range(3))
        band_mask[shape] = keep
    peers = np.zeros(27, dtype=np.int64)  # band cell -> its row and box in the band, itself out
    column = np.zeros(27, dtype=np.int64)  # band cell -> its column's three cells in a band
    for pos in range(27):
        r, c = divmod(pos, 9)
        box = sum(7 << (9 * rr + 3 * (c // 3)) for rr in range(3))
        peers[pos] = ((511 << (9 * r)) | box) & ~(1 << pos)
        column[pos] = (1 | 1 << 9 | 1 << 18) << c
    # de Bruijn: index of a one-bit int below 2**32 in a multiply and a lookup
    debruijn = np.zeros(32, dtype=np.int64)
    for i in range(32):
        debruijn[(((1 << i) * 0x077CB531) & 0xFFFFFFFF) >> 27] = i
    # the same rule as 9-bit pairs (bit 3b+j: band b may hold the digit in column j of a stack)
    stack_keep = np.zeros(512, dtype=np.int64)
    for shape in range(512):
        mask = band_mask[shape]
        stack_keep[shape] = sum(1 << (3 * r + k) for r in range(3) for k in range(3)
                                if (mask >> (9 * r + 3 * k)) & 1)
    return row_boxes, row_single, band_mask, stack_keep, peers, column, debruijn


# numba freezes these module arrays into the compiled code as constants
_ROW_BOXES, _ROW_SINGLE, _BAND_MASK, _STACK_KEEP, _PEERS, _COLUMN, _DEBRUIJN = _tables()


@numba.njit(cache=True, error_model="numpy", inline="always")
def _bit_index(bit):
    return _DEBRUIJN[((bit * 0x077CB531) & 0xFFFFFFFF) >> 27]


@numba.njit(cache=True, error_model="numpy", inline="always")
def _place(state, b, bit, d, dirty):
    """Place digit ``d`` (0-based) on the cell ``bit`` of band ``b``: clear the cell from the
    other digits, the cell's row, box and column from digit ``d``. Returns ``dirty`` with the
    (digit, band) words that changed added."""
    for dd in range(9):
        if dd != d:
            j = 3 * dd + b
            x = state[j]
            if x & bit:
                state[j] = x & ~bit
                dirty |= np.int64(1) << j
    pos = _bit_index(bit)
    j = 3 * d + b
    x = state[j]
    y = x & ~_PEERS[pos]
    if y != x:
        state[j] = y
        dirty |= np.int64(1) << j
    col = _COLUMN[pos]
    for bb in range(3):
        if bb != b:
            j = 3 * d + bb
            x = state[j]
            if x & col:
                state[j] = x & ~col
                dirty |= np.int64(1) << j
    state[27 + b] &= ~bit
    return dirty


@numba.njit(cache=True, error_model="numpy")
def _propagate(state, dirty):
    """Deduce to a fixpoint from the queued (digit, band) words ``dirty``; False on contradiction.

    The fixpoint, and whether a contradiction is met, does not depend on the order of the
    deductions (each only removes candidates), so only changed words are revisited.
    """
    digits = np.int64(0)  # digits with a word changed since their last column pass
    while True:
        while dirty:
            i = _bit_index(dirty & -dirty)
            dirty &= dirty - 1
            d = i // 3
            b = i - 3 * d
            digits |= np.int64(1) << d
            f = state[i]
            shape = (_ROW_BOXES[f & 511] | (_ROW_BOXES[(f >> 9) & 511] << 3)
                     | (_ROW_BOXES[f >> 18] << 6))
            f &= _BAND_MASK[shape]
            if f == 0:
                return False
            state[i] = f
            # rows of the band with one cell left for the digit: hidden singles not placed yet.
            # The table already cleared their boxes in the other rows; clear the cells from the
            # other digits and the columns from the digit's other bands.
            single = (_ROW_SINGLE[f & 511] | (_ROW_SINGLE[(f >> 9) & 511] << 9)
                      | (_ROW_SINGLE[f >> 18] << 18)) & state[27 + b]
            if single:
                state[27 + b] &= ~single
                for dd in range(9):
                    if dd != d:
                        j = 3 * dd + b
                        x = state[j]
                        if x & single:
                            state[j] = x & ~single
                            dirty |= np.int64(1) << j
                cols = (single | (single >> 9) | (single >> 18)) & 511
                cols |= (cols << 9) | (cols << 18)
                for bb in range(3):
                    if bb != b:
                        j = 3 * d + bb
                        x = state[j]
                        if x & cols:
                            state[j] = x & ~cols
                            dirty |= np.int64(1) << j
        # naked singles: bit-sliced count of the digits left in each cell of a band
        for b in range(3):
            ones = np.int64(0)
            twos = np.int64(0)
            for d in range(9):
                x = state[3 * d + b]
                twos |= ones & x
                ones |= x
            if ones != FULL:
                return False  # a cell with no digit left
            naked = ones & ~twos & state[27 + b]
            while naked:
                bit = naked & -naked
                naked ^= bit
                digit = -1
                for d in range(9):
                    if state[3 * d + b] & bit:
                        digit = d
                        break
                if digit < 0:
                    return False  # an earlier single of this scan took the cell's last digit
                dirty = _place(state, b, bit, digit, dirty)
        if dirty:
            continue
        todo = digits
        digits = 0
        # along columns: the stacks' box-line rule (each column of a stack takes the digit in
        # a different band), then hidden singles in columns
        for d in range(9):
            if not (todo >> d) & 1:
                continue
            x0 = state[3 * d]
            x1 = state[3 * d + 1]
            x2 = state[3 * d + 2]
            o0 = (x0 | (x0 >> 9) | (x0 >> 18)) & 511  # columns with the digit in each band
            o1 = (x1 | (x1 >> 9) | (x1 >> 18)) & 511
            o2 = (x2 | (x2 >> 9) | (x2 >> 18)) & 511
            m0 = np.int64(0)
            m1 = np.int64(0)
            m2 = np.int64(0)
            for s in range(0, 9, 3):
                shape = ((o0 >> s) & 7) | (((o1 >> s) & 7) << 3) | (((o2 >> s) & 7) << 6)
                keep = _STACK_KEEP[shape]
                if keep == 0:
                    return False
                m0 |= (keep & 7) << s
                m1 |= ((keep >> 3) & 7) << s
                m2 |= ((keep >> 6) & 7) << s
            x0 &= m0 * 0x40201
            x1 &= m1 * 0x40201
            x2 &= m2 * 0x40201
            ones = np.int64(0)
            twos = np.int64(0)
            for x in (x0, x1, x2):
                r0 = x & 511
                r1 = (x >> 9) & 511
                r2 = x >> 18
                twos |= (ones & (r0 | r1 | r2)) | (r0 & r1) | (r0 & r2) | (r1 & r2)
                ones |= r0 | r1 | r2
            alone = (ones & ~twos) * 0x40201  # columns with one cell left for the digit
            for b in range(3):
                j = 3 * d + b
                x = x0 if b == 0 else (x1 if b == 1 else x2)
                if x != state[j]:
                    state[j] = x
                    dirty |= np.int64(1) << j
                hidden = x & alone & state[27 + b]
                while hidden:
                    bit = hidden & -hidden
                    hidden ^= bit
                    if state[j] & bit:  # not cleared by the single just placed
                        dirty = _place(state, b, bit, d, dirty)
        if dirty == 0:
            return True


@numba.njit(cache=True, error_model="numpy")
def _pick_cell(state):
    """The branch cell as (band, bit): the first open cell with two candidates, else the first
    with the fewest; band -1 when every cell is placed."""
    any_open = False
    for b in range(3):
        open_cells = state[27 + b]
        if open_cells == 0:
            continue
        any_open = True
        ones = np.int64(0)
        twos = np.int64(0)
        threes = np.int64(0)
        for d in range(9):
            x = state[3 * d + b]
            threes |= twos & x
            twos |= ones & x
            ones |= x
        pairs = twos & ~threes & open_cells
        if pairs:
            return b, pairs & -pairs
    if not any_open:
        return -1, np.int64(0)
    best_b = -1
    best_bit = np.int64(0)
    best_count = 10
    for b in range(3):
        open_cells = state[27 + b]
        while open_cells:
            bit = open_cells & -open_cells
            open_cells ^= bit
            count = 0
            for d in range(9):
                if state[3 * d + b] & bit:
                    count += 1
            if count < best_count:
                best_b, best_bit, best_count = b, bit, count
    return best_b, best_bit


@numba.njit(cache=True, error_model="numpy")
def search9(givens, limit, solution, stats):
    """Count the solutions of a 9x9 puzzle (flat int8, 0 blank) up to ``limit``.

    Writes the first solution found into ``solution`` and adds nodes and guesses to ``stats[0]``
    and ``stats[1]``. A digit outside 1..9, a digit twice in a unit, or an open cell whose peers
    hold every digit is no solution before any propagation (no node counted), as in the generic
    core.
    """
    units = np.zeros(27, dtype=np.int32)  # digits placed in each row, column, box
    for cell in range(81):
        v = givens[cell]
        if v != 0:
            if v < 0 or v > 9:
                return 0
            bit = np.int32(1) << (v - 1)
            r = cell // 9
            c = cell - 9 * r
            box = 18 + (r // 3) * 3 + c // 3
            if (units[r] | units[9 + c] | units[box]) & bit:
                return 0
            units[r] |= bit
            units[9 + c] |= bit
            units[box] |= bit
    state = np.empty(30, dtype=np.int64)
    state[:] = FULL
    for cell in range(81):
        v = givens[cell]
        if v != 0:
            b = cell // 27
            _place(state, b, np.int64(1) << (cell - 27 * b), v - 1, 0)
    for b in range(3):
        seen = np.int64(0)
        for d in range(9):
            seen |= state[3 * d + b]
        if seen != FULL:
            return 0

    saved = np.empty((82, 30), dtype=np.int64)  # one row per open branch (depth <= open cells)
    branch_b = np.empty(82, dtype=np.int64)
    branch_bit = np.empty(82, dtype=np.int64)
    branch_left = np.empty(82, dtype=np.int64)  # digits (bit d) still to try
    depth = 0
    count = 0
    nodes = 1
    guesses = 0
    ok = _propagate(state, np.int64(_ALL_WORDS))
    while True:
        if ok:
            b, bit = _pick_cell(state)
            if b < 0:  # every cell placed: a solution
                count += 1
                if count == 1:
                    for d in range(9):
                        for bb in range(3):
                            x = state[3 * d + bb]
                            while x:
                                low = x & -x
                                x ^= low
                                solution[27 * bb + _bit_index(low)] = d + 1
                if count >= limit:
                    break
            else:
                left = 0
                for d in range(9):
                    if state[3 * d + b] & bit:
                        left |= 1 << d
                for k in range(30):  # a plain loop: a slice would cost reference counting
                    saved[depth, k] = state[k]
                branch_b[depth] = b
                branch_bit[depth] = bit
                branch_left[depth] = left
                depth += 1
        # take the next untried branch, backtracking over exhausted ones
        ok = False
        while depth > 0:
            left = branch_left[depth - 1]
            if left == 0:
                depth -= 1
                continue
            low = left & -left
            branch_left[depth - 1] = left ^ low
            for k in range(30):
                state[k] = saved[depth - 1, k]
            guesses += 1
            nodes += 1
            b = branch_b[depth - 1]
            dirty = _place(state, b, branch_bit[depth - 1], _bit_index(low), 0)
            ok = _propagate(state, dirty)
            break
        if not ok and depth == 0:
            break
    stats[0] += nodes
    stats[1] += guesses
    return count


@numba.njit(cache=True, error_model="numpy", nogil=True)
def solve_batch9(puzzles, limit, solutions, counts, stats):
    """:func:`search9` over the rows of ``puzzles`` (B, 81), one core; without the GIL, so
    Python threads can run it side by side on parts of a batch."""
    for i in range(puzzles.shape[0]):
        counts[i] = search9(puzzles[i], limit, solutions[i], stats[i])


@numba.njit(cache=True, error_model="numpy", parallel=True)
def solve_batch9_parallel(puzzles, limit, solutions, counts, stats):
    """:func:`solve_batch9` over numba's threads; each puzzle writes only its own rows."""
    for i in numba.prange(puzzles.shape[0]):
        counts[i] = search9(puzzles[i], limit, solutions[i], stats[i])

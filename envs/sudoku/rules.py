"""Sudoku rules over a batch axis, shared by the single env (a batch of one) and the vector env.

State of ``B`` boards of ``n x n`` cells (``nn = n*n``):

- ``board``  (B, nn) int8: 0 blank, else the digit;
- ``givens`` (B, nn) bool: the clues of the puzzle (never overwritten);
- ``mask``   (B, nn, n) int8: 1 where writing digit ``d+1`` in the cell is legal now (the cell is
  blank and no peer holds the digit); flattened to (B, nn*n) it is ``info["action_mask"]``;
- ``cand_count`` (B, nn) int16: legal digits left per blank cell (0 on a blank cell = dead end);
- ``filled`` (B,) int16: filled cells, givens included.

A move only ever changes the moved cell and its peers, so the mask is updated in place rather
than recomputed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .board import Geometry


@dataclass
class BoardState:
    board: np.ndarray
    givens: np.ndarray
    mask: np.ndarray
    cand_count: np.ndarray
    filled: np.ndarray

    @classmethod
    def empty(cls, batch: int, geo: Geometry) -> BoardState:
        n, nn = geo.size, geo.num_cells
        return cls(np.zeros((batch, nn), np.int8), np.zeros((batch, nn), bool),
                   np.zeros((batch, nn, n), np.int8), np.zeros((batch, nn), np.int16),
                   np.zeros(batch, np.int16))


@functools.cache
def _tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digit -> bit (0 for blank); free-digit bit mask -> (n,) int8 row; -> number of bits."""
    bit_of = np.array([0] + [1 << d for d in range(n)], np.int32)
    row_of = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(np.int8)
    return bit_of, row_of, row_of.sum(axis=1, dtype=np.int16)


def free_digits(boards: np.ndarray, geo: Geometry) -> np.ndarray:
    """(k, nn) boards -> (k, nn) int32 bit masks of the digits each blank cell may take."""
    bit_of, _, _ = _tables(geo.size)
    bits = bit_of[boards]  # (k, nn)
    units = bits[:, geo.units]  # (k, 3n, n)
    unit_used = units[:, :, 0].copy()
    for slot in range(1, geo.size):  # OR over the unit's cells, one column at a time
        unit_used |= units[:, :, slot]
    used = unit_used[:, geo.cell_units]  # (k, nn, 3)
    cell_used = used[:, :, 0] | used[:, :, 1] | used[:, :, 2]
    cell_used[boards > 0] = geo.full_mask  # a filled cell takes no digit
    return cell_used ^ geo.full_mask


def legal_mask(boards: np.ndarray, geo: Geometry) -> np.ndarray:
    """(k, nn) boards -> (k, nn, n) int8 mask of legal (cell, digit) writes."""
    return _tables(geo.size)[1][free_digits(boards, geo)]


def load_rows(state: BoardState, rows: np.ndarray, puzzles: np.ndarray, geo: Geometry) -> None:
    """Start the boards ``rows`` on ``puzzles`` ((k, nn) int8)."""
    _, row_of, count_of = _tables(geo.size)
    free = free_digits(puzzles, geo)
    state.board[rows] = puzzles
    state.givens[rows] = puzzles != 0
    state.mask[rows] = row_of[free]
    state.cand_count[rows] = count_of[free]
    state.filled[rows] = geo.num_cells - (puzzles == 0).sum(axis=1)


def apply_moves(state: BoardState, rows: np.ndarray, cells: np.ndarray, digits: np.ndarray,
                geo: Geometry):
    """Write ``digits`` (1-based) into ``cells`` of boards ``rows`` where legal.

    Returns ``(legal, solved, dead_end)`` bool arrays aligned with ``rows``: ``legal`` whether the
    move was allowed (illegal moves change nothing), ``solved`` the board is complete (a board
    filled only by legal moves is a valid solution), ``dead_end`` some blank cell has no legal
    digit left, so the board can no longer be completed.
    """
    n, nn = geo.size, geo.num_cells
    # flat indices into the contiguous state arrays: cheaper than multi-axis fancy indexing
    mask, board = state.mask.reshape(-1), state.board.reshape(-1)
    count = state.cand_count.reshape(-1)
    d = digits - 1
    legal = mask[(rows * nn + cells) * n + d].astype(bool)
    r, c, d = rows[legal], cells[legal], d[legal]
    cell_at = r * nn + c
    board[cell_at] = d + 1
    state.mask[r, c, :] = 0
    count[cell_at] = 0
    state.filled[r] += 1
    peer_at = (r * nn)[:, None] + geo.peers[c]  # (m, P) flat peer cells
    digit_at = peer_at * n + d[:, None]
    cleared = mask[digit_at]  # 1 where the peer loses this digit
    mask[digit_at] = 0
    left = count[peer_at] - cleared
    count[peer_at] = left
    dead = ((left == 0) & (board[peer_at] == 0)).any(axis=1)

    solved = np.zeros(len(rows), bool)
    dead_end = np.zeros(len(rows), bool)
    solved[legal] = state.filled[r] == nn
    dead_end[legal] = dead
    return legal, solved, dead_end


def valid_completions(answers: np.ndarray, givens: np.ndarray, geo: Geometry) -> np.ndarray:
    """(k, nn) answers, (k, nn) puzzles -> (k,) bool: complete, rule-abiding, keeps the givens."""
    n = geo.size
    values = answers[:, geo.units]  # (k, 3n, n)
    counts = np.zeros((answers.shape[0], 3 * n, n + 1), np.int16)
    np.put_along_axis(counts, values.astype(np.intp), 1, axis=2)
    every_digit_once = counts[:, :, 1:].all(axis=(1, 2))
    keeps_givens = ((givens == 0) | (answers == givens)).all(axis=1)
    return every_digit_once & keeps_givens

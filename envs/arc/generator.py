"""Procedural ARC-like tasks: seeded families, each with a known program.

A *family* draws a hidden task-level *rule* (e.g. which of the 8 flips), then input grids; every
output is the family's *program* run on its input under that rule. A task is 3..5 demonstration
pairs and 1 test pair, all inputs distinct, every output different from its input, and the rule
identifiable from the demos where a family can tell (e.g. every recoloured colour appears in a
demo). Background is colour 0 unless a family says otherwise. Connectivity is 4-connectivity.

Families (``FAMILIES``):

- ``flip``: one of the 7 non-identity dihedral transforms, ``transform`` = k as
  :func:`tracegym.grid.dihedral` numbers them (TRM's numbering).
- ``recolour``: 1..3 colours are replaced cell-wise by others (a colour lookup table).
- ``gravity``: non-background cells fall ``down``/``up``/``left``/``right`` until blocked,
  keeping their order along the fall line.
- ``fill_enclosed``: background cells not 4-connected to the border get the fill colour.
- ``translate``: the whole grid content shifts by ``(dr, dc)``; with ``wrap`` cells leaving one
  edge come back on the other (``np.roll``), without it they are clipped and the vacated cells
  become background.
- ``symmetry``: a grid mirror-symmetric about ``axes`` (``h`` left-right, ``v`` top-bottom or
  ``both``) with a rectangle painted in the mask colour; the output is the completed grid.
- ``scale``: each cell becomes a ``k x k`` block (k = 2 or 3).
- ``tile``: the input tiled ``n x m`` times; with ``mirror`` the odd block rows are flipped top to
  bottom and the odd block columns left to right.
- ``count_bar``: count the ``cells`` or the ``objects`` of one colour; the output is a
  ``1 x count`` bar of that colour.
- ``largest_object``: the bounding-box crop of the largest 4-connected object of non-background
  cells (background per task), other cells in the box set to background.
- ``outline``: solid rectangles keep their border; their interior becomes the hole colour.

Item ``index`` of ``seed`` comes from its own ``np.random.default_rng([seed, index])``
(:func:`procedural_task`), so any item can be rebuilt alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tracegym.checks import check_int, check_seed
from tracegym.grid import dihedral

from .constants import BG, MAX_DEMOS, MAX_SIDE, NUM_COLOURS
from .data import ArcTask

MAX_TASK_TRIES = 50  # redraws of the rule (a rule whose demos do not identify it)
MAX_PAIR_TRIES = 200  # redraws of inputs within one rule (duplicates, no-op outputs)

Rule = dict[str, Any]
Grid = np.ndarray


@dataclass(frozen=True)
class Family:
    """A family of tasks: a hidden rule per task, inputs under it, and the program.

    ``accept(input, output, rule)`` may reject a drawn pair (e.g. an output with nothing left);
    ``identifiable(demos, rule)`` may reject a task whose demos leave the rule unclear.
    """

    name: str
    description: str
    sample_rule: Callable[[np.random.Generator], Rule]
    sample_input: Callable[[np.random.Generator, Rule], Grid]
    program: Callable[[Grid, Rule], Grid]
    accept: Callable[[Grid, Grid, Rule], bool] | None = None
    identifiable: Callable[[list[tuple[Grid, Grid]], Rule], bool] | None = None


@dataclass(frozen=True)
class ProceduralTask:
    """A generated task with its family and hidden rule (the answer key for the program)."""

    task: ArcTask
    family: str
    rule: Rule


# -- shared helpers -------------------------------------------------------------------------------
def _side(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def _scatter(rng: np.random.Generator, h: int, w: int, colours, density: float,
             bg: int = BG) -> Grid:
    """An ``h x w`` grid of ``bg`` with about ``density`` of its cells drawn from ``colours``."""
    grid = np.full((h, w), bg, np.int8)
    mask = rng.random((h, w)) < density
    grid[mask] = rng.choice(np.asarray(colours, np.int8), size=int(mask.sum()))
    return grid


def _colours(rng: np.random.Generator, count: int, exclude=()) -> list[int]:
    pool = [c for c in range(1, NUM_COLOURS) if c not in exclude]
    return [int(c) for c in rng.choice(pool, size=count, replace=False)]


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a boolean mask: ``(labels, count)``, labels an int32 grid with
    0 off the mask and 1..count numbered in row-major order of each component's first cell."""
    h, w = mask.shape
    # a depth-first search over flat indices in plain lists: on grids this small that beats
    # numpy element access several times over
    labels = [0 if v else -1 for v in mask.ravel().tolist()]  # -1: not on the mask
    count = 0
    for start in np.flatnonzero(mask).tolist():
        if labels[start]:
            continue
        count += 1
        labels[start] = count
        stack = [start]
        while stack:
            i = stack.pop()
            r, c = divmod(i, w)
            for j, ok in ((i - w, r > 0), (i + w, r < h - 1), (i - 1, c > 0), (i + 1, c < w - 1)):
                if ok and labels[j] == 0:
                    labels[j] = count
                    stack.append(j)
    grid = np.array(labels, np.int32).reshape(h, w)
    grid[grid < 0] = 0
    return grid, count


def _only_rule_fits(program, **choices):
    """An ``identifiable`` check: no other rule, ``choices`` giving the values each key may take,
    maps every demo input to its output."""
    keys = list(choices)

    def check(demos, rule):
        for values in itertools.product(*choices.values()):
            other = {**rule, **dict(zip(keys, values))}
            if other != rule and all(_same(program(x, other), y) for x, y in demos):
                return False
        return True
    return check


def _same(a: Grid, b: Grid) -> bool:
    return a.shape == b.shape and bool((a == b).all())


# -- flip -----------------------------------------------------------------------------------------
def _flip_program(grid, rule):
    return np.ascontiguousarray(dihedral(grid, rule["transform"]))


FLIP = Family(
    "flip", "one of the 7 non-identity rotations/reflections of the whole grid",
    sample_rule=lambda rng: {"transform": _side(rng, 1, 7)},
    sample_input=lambda rng, rule: _scatter(rng, _side(rng, 2, 8), _side(rng, 2, 8),
                                            _colours(rng, 3), rng.uniform(0.3, 0.7)),
    program=_flip_program,
    identifiable=_only_rule_fits(_flip_program, transform=range(1, 8)),
)


# -- recolour -------------------------------------------------------------------------------------
def _recolour_rule(rng):
    n = _side(rng, 1, 3)
    sources = _colours(rng, n)
    if n > 1 and rng.random() < 0.5:
        targets = sources[1:] + sources[:1]  # a swap or a cycle among the sources
    else:
        targets = [int(c) for c in rng.choice(
            [c for c in range(NUM_COLOURS) if c not in sources], size=n)]
    table = list(range(NUM_COLOURS))
    for s, t in zip(sources, targets):
        table[s] = t
    return {"table": table}


def _mapped(rule):
    return [c for c, t in enumerate(rule["table"]) if t != c]


def _recolour_input(rng, rule):
    colours = sorted(set(_mapped(rule)) | set(_colours(rng, 2)))
    return _scatter(rng, _side(rng, 2, 10), _side(rng, 2, 10), colours, rng.uniform(0.3, 0.8))


RECOLOUR = Family(
    "recolour", "1..3 colours replaced cell-wise by others (a lookup table)",
    sample_rule=_recolour_rule,
    sample_input=_recolour_input,
    program=lambda grid, rule: np.asarray(rule["table"], np.int8)[grid],
    # every changed colour shows in some demo, else the demos cannot teach it
    identifiable=lambda demos, rule: set(_mapped(rule)) <= set(
        np.unique(np.concatenate([x.ravel() for x, _ in demos])).tolist()),
)


# -- gravity --------------------------------------------------------------------------------------
# quarter turns that bring each direction to "down" (np.rot90 turns anticlockwise)
_TO_DOWN = {"down": 0, "up": 2, "left": 1, "right": -1}


def _gravity_program(grid, rule):
    k = _TO_DOWN[rule["direction"]]
    g = np.rot90(grid, k)
    # a stable sort of "is foreground" per column moves foreground to the bottom, order kept
    order = np.argsort(g != BG, axis=0, kind="stable")  # (h, w)
    return np.ascontiguousarray(np.rot90(np.take_along_axis(g, order, axis=0), -k))


GRAVITY = Family(
    "gravity", "non-background cells fall in one direction until blocked",
    sample_rule=lambda rng: {"direction": str(rng.choice(list(_TO_DOWN)))},
    sample_input=lambda rng, rule: _scatter(rng, _side(rng, 3, 10), _side(rng, 3, 10),
                                            _colours(rng, 3), rng.uniform(0.15, 0.4)),
    program=_gravity_program,
    identifiable=_only_rule_fits(_gravity_program, direction=list(_TO_DOWN)),
)


# -- fill_enclosed --------------------------------------------------------------------------------
def outside_background(grid: Grid, bg: int = BG) -> np.ndarray:
    """Background cells 4-connected to the border, by dilation until nothing changes."""
    free = grid == bg
    reach = np.zeros_like(free)
    reach[0, :], reach[-1, :], reach[:, 0], reach[:, -1] = free[0], free[-1], free[:, 0], \
        free[:, -1]
    while True:
        grown = reach.copy()
        grown[1:] |= reach[:-1]
        grown[:-1] |= reach[1:]
        grown[:, 1:] |= reach[:, :-1]
        grown[:, :-1] |= reach[:, 1:]
        grown &= free
        if (grown == reach).all():
            return reach
        reach = grown


def _fill_program(grid, rule):
    out = grid.copy()
    out[(grid == BG) & ~outside_background(grid)] = rule["colour"]
    return out


def _fill_input(rng, rule):
    h, w = _side(rng, 5, 12), _side(rng, 5, 12)
    wall = _colours(rng, 1, exclude=[rule["colour"]])[0]
    grid = _scatter(rng, h, w, [wall], 0.08)
    for _ in range(_side(rng, 1, 3)):  # hollow rectangles, some of them broken
        rh, rw = _side(rng, 3, min(h, 6)), _side(rng, 3, min(w, 6))
        r, c = _side(rng, 0, h - rh), _side(rng, 0, w - rw)
        grid[r:r + rh, c:c + rw][[0, -1], :] = wall
        grid[r:r + rh, c:c + rw][:, [0, -1]] = wall
        grid[r + 1:r + rh - 1, c + 1:c + rw - 1] = BG
        if rng.random() < 0.25:
            grid[r, c + 1] = BG
    return grid


FILL_ENCLOSED = Family(
    "fill_enclosed", "background cells cut off from the border get the fill colour",
    sample_rule=lambda rng: {"colour": _colours(rng, 1)[0]},
    sample_input=_fill_input,
    program=_fill_program,
)


# -- translate ------------------------------------------------------------------------------------
def _translate_program(grid, rule):
    dr, dc = rule["dr"], rule["dc"]
    h, w = grid.shape
    if rule["wrap"]:  # np.roll(grid, (dr, dc), (0, 1)) by fancy indexing, a few times faster
        return grid[(np.arange(h) - dr) % h][:, (np.arange(w) - dc) % w]
    out = np.full_like(grid, BG)
    out[max(dr, 0):h + min(dr, 0), max(dc, 0):w + min(dc, 0)] = \
        grid[max(-dr, 0):h - max(dr, 0), max(-dc, 0):w - max(dc, 0)]
    return out


def _translate_rule(rng):
    while True:
        dr, dc = (int(v) for v in rng.integers(-2, 3, size=2))
        if dr or dc:
            return {"dr": dr, "dc": dc, "wrap": bool(rng.random() < 0.5)}


TRANSLATE = Family(
    "translate", "the grid content shifts by (dr, dc), wrapping or clipped",
    sample_rule=_translate_rule,
    sample_input=lambda rng, rule: _scatter(rng, _side(rng, 4, 10), _side(rng, 4, 10),
                                            _colours(rng, 3), rng.uniform(0.1, 0.35)),
    program=_translate_program,
    accept=lambda x, y, rule: bool((y != BG).any()),
    identifiable=_only_rule_fits(_translate_program, dr=range(-2, 3), dc=range(-2, 3),
                                 wrap=(False, True)),
)


# -- symmetry -------------------------------------------------------------------------------------
_MIRRORS = {"h": ((False, True),), "v": ((True, False),),
            "both": ((False, True), (True, False), (True, True))}


def _mirror(grid, rows, cols):
    return grid[::-1 if rows else 1, ::-1 if cols else 1]


def _symmetry_program(grid, rule):
    mask = rule["mask_colour"]
    out = grid.copy()
    for rows, cols in _MIRRORS[rule["axes"]]:
        out = np.where(out == mask, _mirror(grid, rows, cols), out)
    return out


def _symmetry_input(rng, rule):
    axes, mask = rule["axes"], rule["mask_colour"]
    h, w = _side(rng, 4, 12), _side(rng, 4, 12)
    grid = _scatter(rng, h, w, _colours(rng, 3, exclude=[mask]), rng.uniform(0.3, 0.7))
    if axes in ("h", "both"):
        grid[:, w - w // 2:] = grid[:, :w // 2][:, ::-1]
    if axes in ("v", "both"):
        grid[h - h // 2:, :] = grid[:h // 2][::-1]
    # the mask sits inside one half (quarter), so its mirror images are never masked
    hr = h // 2 if axes in ("v", "both") else h
    hc = w // 2 if axes in ("h", "both") else w
    mh, mw = _side(rng, 1, min(hr, 4)), _side(rng, 1, min(hc, 4))
    r, c = _side(rng, 0, hr - mh), _side(rng, 0, hc - mw)
    if rng.random() < 0.5 and axes in ("v", "both"):
        r = h - r - mh  # the other half
    if rng.random() < 0.5 and axes in ("h", "both"):
        c = w - c - mw
    grid[r:r + mh, c:c + mw] = mask
    return grid


SYMMETRY = Family(
    "symmetry", "complete a mirror-symmetric grid where a rectangle is masked",
    sample_rule=lambda rng: {"axes": str(rng.choice(list(_MIRRORS))),
                             "mask_colour": _colours(rng, 1)[0]},
    sample_input=_symmetry_input,
    program=_symmetry_program,
    accept=lambda x, y, rule: not (y == rule["mask_colour"]).any(),
)


# -- scale ----------------------------------------------------------------------------------------
SCALE = Family(
    "scale", "each cell becomes a k x k block",
    sample_rule=lambda rng: {"k": _side(rng, 2, 3)},
    sample_input=lambda rng, rule: _scatter(rng, _side(rng, 1, 30 // rule["k"] // 2 + 1),
                                            _side(rng, 1, 30 // rule["k"] // 2 + 1),
                                            _colours(rng, 3), rng.uniform(0.3, 0.8)),
    program=lambda grid, rule: np.repeat(np.repeat(grid, rule["k"], 0), rule["k"], 1),
)


# -- tile -----------------------------------------------------------------------------------------
def _tile_program(grid, rule):
    n, m = rule["n"], rule["m"]
    if not rule["mirror"]:
        return np.tile(grid, (n, m))
    return np.block([[_mirror(grid, i % 2 == 1, j % 2 == 1) for j in range(m)]
                     for i in range(n)])


def _tile_rule(rng):
    while True:
        n, m = _side(rng, 1, 3), _side(rng, 1, 3)
        if n * m > 1:
            return {"n": n, "m": m, "mirror": bool(rng.random() < 0.5)}


TILE = Family(
    "tile", "the input tiled n x m times, plainly or with alternate mirrors",
    sample_rule=_tile_rule,
    sample_input=lambda rng, rule: _scatter(rng, _side(rng, 2, min(30 // rule["n"], 6)),
                                            _side(rng, 2, min(30 // rule["m"], 6)),
                                            _colours(rng, 3), rng.uniform(0.3, 0.7)),
    program=_tile_program,
    identifiable=_only_rule_fits(_tile_program, mirror=(False, True)),
)


# -- count_bar ------------------------------------------------------------------------------------
def _count(grid, rule):
    mask = grid == rule["colour"]
    return label_components(mask)[1] if rule["what"] == "objects" else int(mask.sum())


def _count_input(rng, rule):
    h, w = _side(rng, 3, 9), _side(rng, 3, 9)
    grid = _scatter(rng, h, w, _colours(rng, 2, exclude=[rule["colour"]]), rng.uniform(0.1, 0.3))
    cells = rng.random((h, w)) < rng.uniform(0.05, 0.25)
    grid[cells] = rule["colour"]
    return grid


COUNT_BAR = Family(
    "count_bar", "count the cells or objects of one colour; output a 1 x count bar of it",
    sample_rule=lambda rng: {"colour": _colours(rng, 1)[0],
                             "what": str(rng.choice(["cells", "objects"]))},
    sample_input=_count_input,
    program=lambda grid, rule: np.full((1, _count(grid, rule)), rule["colour"], np.int8),
    accept=lambda x, y, rule: 1 <= y.shape[1] <= MAX_SIDE,
    identifiable=lambda demos, rule: any(
        _count(x, {**rule, "what": "cells"}) != _count(x, {**rule, "what": "objects"})
        for x, _ in demos),
)


# -- largest_object -------------------------------------------------------------------------------
def _largest_program(grid, rule):
    bg = rule["background"]
    labels, count = label_components(grid != bg)
    if not count:
        return grid.copy()
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    rows, cols = np.nonzero(labels == 1 + int(sizes.argmax()))  # first of the largest
    r0, c0 = rows.min(), cols.min()
    out = np.full((rows.max() - r0 + 1, cols.max() - c0 + 1), bg, np.int8)
    out[rows - r0, cols - c0] = grid[rows, cols]
    return out


def _largest_unique(x, y, rule):
    labels, count = label_components(x != rule["background"])
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    return count >= 2 and sizes[0] >= 3 and sizes[0] > sizes[1]


LARGEST_OBJECT = Family(
    "largest_object", "crop the bounding box of the largest 4-connected object",
    sample_rule=lambda rng: {"background": _side(rng, 0, 9) if rng.random() < 0.3 else BG},
    sample_input=lambda rng, rule: _scatter(
        rng, _side(rng, 4, 12), _side(rng, 4, 12),
        _colours(rng, 2, exclude=[rule["background"]]) if rule["background"] else
        _colours(rng, 2), rng.uniform(0.2, 0.45), bg=rule["background"]),
    program=_largest_program,
    accept=_largest_unique,
)


# -- outline --------------------------------------------------------------------------------------
def _outline_program(grid, rule):
    # a cell whose 4 neighbours are all non-background lies inside a solid shape: hollow it
    fg = np.pad(grid != BG, 1)
    inner = fg[1:-1, 1:-1] & fg[:-2, 1:-1] & fg[2:, 1:-1] & fg[1:-1, :-2] & fg[1:-1, 2:]
    out = grid.copy()
    out[inner] = rule["hole"]
    return out


def _outline_input(rng, rule):
    h, w = _side(rng, 5, 14), _side(rng, 5, 14)
    grid = np.full((h, w), BG, np.int8)
    for colour in _colours(rng, _side(rng, 1, 3), exclude=[rule["hole"]]):
        rh, rw = _side(rng, 3, min(h, 7)), _side(rng, 3, min(w, 7))
        r, c = _side(rng, 0, h - rh), _side(rng, 0, w - rw)
        grid[r:r + rh, c:c + rw] = colour
    return grid


OUTLINE = Family(
    "outline", "cells inside solid shapes (all 4 neighbours filled) get the hole colour",
    sample_rule=lambda rng: {"hole": int(rng.integers(0, NUM_COLOURS))},
    sample_input=_outline_input,
    program=_outline_program,
)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    FLIP, RECOLOUR, GRAVITY, FILL_ENCLOSED, TRANSLATE, SYMMETRY, SCALE, TILE, COUNT_BAR,
    LARGEST_OBJECT, OUTLINE)}


# -- tasks ----------------------------------------------------------------------------------------
def get_family(name: str) -> Family:
    """The family called ``name``; ValueError listing the valid names otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, got {name!r}")
    return FAMILIES[name]


def _check_grid(grid: Grid) -> None:
    assert grid.dtype == np.int8 and grid.ndim == 2, (grid.dtype, grid.shape)
    assert all(1 <= s <= MAX_SIDE for s in grid.shape), grid.shape
    assert grid.min() >= 0 and grid.max() < NUM_COLOURS


def generate_task(family: str, rng: np.random.Generator, *, task_id: str | None = None,
                  num_demos: int | None = None) -> ProceduralTask:
    """A task of ``family`` drawn with ``rng``: ``num_demos`` (3..5 drawn when None)
    demonstration pairs and 1 test pair.

    Inputs are distinct, every output differs from its input, and a rule the demos do not pin
    down is redrawn (at most ``MAX_TASK_TRIES`` rules, ``MAX_PAIR_TRIES`` inputs each).
    """
    fam = get_family(family)
    if num_demos is None:
        num_demos = int(rng.integers(3, 6))
    else:
        num_demos = check_int("num_demos", num_demos, 1, MAX_DEMOS)
    need = int(num_demos) + 1
    for _ in range(MAX_TASK_TRIES):
        rule = fam.sample_rule(rng)
        pairs, seen = [], set()
        for _ in range(MAX_PAIR_TRIES):
            x = fam.sample_input(rng, rule)
            key = (x.shape, x.tobytes())
            if key in seen:
                continue
            y = fam.program(x, rule).astype(np.int8, copy=False)
            if _same(x, y) or not all(1 <= s <= MAX_SIDE for s in y.shape) or (
                    fam.accept is not None and not fam.accept(x, y, rule)):
                continue
            seen.add(key)
            pairs.append((x, np.ascontiguousarray(y)))
            if len(pairs) == need:
                break
        else:
            continue
        demos = pairs[:-1]
        if fam.identifiable is not None and not fam.identifiable(demos, rule):
            continue
        for x, y in pairs:
            _check_grid(x)
            _check_grid(y)
        task = ArcTask(task_id or f"procedural/{family}", tuple(demos), (pairs[-1],))
        return ProceduralTask(task, family, rule)
    raise RuntimeError(f"family {family!r}: no valid task in {MAX_TASK_TRIES} tries")


def procedural_task(family: str, seed: int, index: int) -> ProceduralTask:
    """Item ``index`` of ``family`` under ``seed``, from its own RNG; id
    ``procedural/<family>/<seed>/<index>``."""
    get_family(family)
    seed, index = check_seed(seed), check_seed(index, "index")
    rng = np.random.default_rng([seed, index])
    return generate_task(family, rng, task_id=f"procedural/{family}/{seed}/{index}")


def verify_task(pt: ProceduralTask) -> bool:
    """True when the family's program maps every input of the task to its output."""
    program = get_family(pt.family).program
    pairs = pt.task.train + pt.task.test
    return all(y is not None and _same(program(np.asarray(x), pt.rule), np.asarray(y))
               for x, y in pairs)

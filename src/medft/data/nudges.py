"""Copies turned by a few degrees, shifted by a few per cent, or both at once, perhaps
enlarged or shrunk a little, as augmentations write them (Keras's ``rotation_range``,
``width_shift_range`` and ``zoom_range``, torchvision's ``RandomAffine``, albumentations'
``ShiftScaleRotate``): the part of the copy that came from the original is the original
moved, and the rest is a fill each library makes its own way (black, the nearest edge, a
reflection). So a copy is compared with the original moved back, on the thumbnail's pixels
whose values came from the original only — a mask per nudge, which no fill reaches: on a grid
of turns and shifts (``NUDGES``), then in the turn, shift and zoom fitted between its steps
(``fitted``), after any of the square's eight symmetries (``SYMMETRIES``: a flip up-down or a
quarter turn before the turn and shift is a turn near 90°, 180° or 270°, mirrored or not).

A thumbnail is ``side`` × ``side``; positions are continuous, the image spanning [0, side) on
each axis, pixel ``i``'s centre at ``i + 0.5``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

# How far, in thumbnail pixels, a value sampled from the copy's thumbnail reaches into the
# image: PIL's bilinear filter widens its support to the shrink factor, one thumbnail pixel
# each side, and a sample between pixel centres blends pixels up to one away (1.5 lets the
# gap's fill through: tests/test_duplicates.py).
REACH = 2.0
# Compared on fewer pixels, in hundreds more views and then fitted, distinct chest X-rays come
# closer: the nudges count this much less. More would lose PBC's sharp copies, less flag
# distinct chest X-rays (bench/results_near_duplicates.md, "Turned a few degrees, shifted").
MARGIN = 0.01


@dataclass(frozen=True)
class Nudge:
    """A copy mirrored left-right or not, turned ``degrees`` anticlockwise about the centre (as
    PIL's ``rotate``) and enlarged ``scale`` times about it, then shifted by ``down`` and
    ``right`` of the side (torchvision's ``affine`` and Keras's ``apply_affine_transform``
    turn, scale and shift so)."""

    degrees: float = 0.0
    down: float = 0.0
    right: float = 0.0
    mirrored: bool = False
    scale: float = 1.0

    @property
    def name(self) -> str:
        """What a copy so nudged is of its original, in words (to half a degree and half a per
        cent: a fitted nudge is no more precise). A mirror image is named as the square's
        symmetry nearest it (mirrored left-right and turned 180° is mirrored up-down), then the
        few degrees beyond it."""
        whole = (round(self.degrees * 2) / 2 + 180) % 360 - 180
        quarters = round(whole / 90) if self.mirrored else 0
        parts = [SYMMETRY_NAMES[True, quarters % 4]] if self.mirrored else []
        degrees = whole - 90 * quarters
        if degrees:
            way = {180: ""}.get(abs(degrees), " anticlockwise" if degrees > 0 else " clockwise")
            parts.append(f"turned {abs(degrees):g}°{way}")
        grown = round((self.scale - 1) * 200) / 2
        if grown:
            parts.append(f"enlarged {grown:g} %" if grown > 0 else f"shrunk {-grown:g} %")
        moves = [
            f"{abs(share):g} % {word[share > 0]}"
            for share, word in (
                (round(self.right * 200) / 2, ("left", "right")),
                (round(self.down * 200) / 2, ("up", "down")),
            )
            if share
        ]
        if moves:
            parts.append("shifted " + " and ".join(moves))
        return ", then ".join(parts) or "the same picture"

    @property
    def parameters(self) -> np.ndarray:
        """(5,): degrees, down, right, scale, then 1 for mirrored or 0 (``fitted`` moves the
        first four)."""
        return np.array(
            [self.degrees, self.down, self.right, self.scale, self.mirrored], np.float64
        )

    @classmethod
    def of(cls, parameters: np.ndarray) -> Nudge:
        degrees, down, right, scale, mirrored = parameters.tolist()
        return cls(degrees, down, right, bool(mirrored), scale)

    def to_copy(self, points: np.ndarray, side: int) -> np.ndarray:
        """Where the original's ``points`` (…, 2: row, column) lie in the copy."""
        flat = points.reshape(1, -1, 2)
        return _to_copy(self.parameters[None], flat, side).reshape(points.shape)

    def to_original(self, points: np.ndarray, side: int) -> np.ndarray:
        """Where the copy's ``points`` came from in the original (``to_copy`` undone)."""
        flat = points.reshape(1, -1, 2)
        return _to_original(self.parameters[None], flat, side).reshape(points.shape)


# The square's eight symmetries, each a mirror left-right or not, then quarter turns
# anticlockwise (``symmetric``), and what a copy so made is of its original.
SYMMETRY_NAMES = {
    (False, 0): "the same picture",
    (False, 1): "turned 90° anticlockwise",
    (False, 2): "turned 180°",
    (False, 3): "turned 90° clockwise",
    (True, 0): "mirrored left-right",
    (True, 1): "mirrored about the diagonal",
    (True, 2): "mirrored up-down",
    (True, 3): "mirrored about the other diagonal",
}


# Nudges as arrays, (n, 5): ``Nudge.parameters``; points (n, m, 2).
MIRRORED = 4
MOVED = slice(0, MIRRORED)  # what ``fitted`` moves: the turn, the shifts and the scale


def _turn(row, column, degrees, scale, centre):
    angle = np.deg2rad(degrees)[:, None]
    cos, sin = np.cos(angle) * scale[:, None], np.sin(angle) * scale[:, None]
    row, column = row - centre, column - centre
    # Anticlockwise on screen, rows growing downwards: a point right of the centre rises.
    return cos * row - sin * column + centre, sin * row + cos * column + centre


def _to_copy(nudges: np.ndarray, points: np.ndarray, side: int) -> np.ndarray:
    mirrored = nudges[:, MIRRORED, None] > 0
    column = np.where(mirrored, side - points[..., 1], points[..., 1])
    row, column = _turn(points[..., 0], column, nudges[:, 0], nudges[:, 3], side / 2)
    return np.stack([row + nudges[:, 1:2] * side, column + nudges[:, 2:3] * side], axis=-1)


def _to_original(nudges: np.ndarray, points: np.ndarray, side: int) -> np.ndarray:
    row = points[..., 0] - nudges[:, 1:2] * side
    column = points[..., 1] - nudges[:, 2:3] * side
    row, column = _turn(row, column, -nudges[:, 0], 1 / nudges[:, 3], side / 2)
    column = np.where(nudges[:, MIRRORED, None] > 0, side - column, column)
    return np.stack([row, column], axis=-1)


def both_ways(nudges) -> tuple[Nudge, ...]:
    """The ``nudges``, then each mirrored left-right first."""
    nudges = tuple(nudges)
    return (*nudges, *(dataclasses.replace(n, mirrored=True) for n in nudges))


# Every pair is compared turned by up to 15° either way in steps of 5°, and shifted by up to
# 10 % of the side on either axis in steps of 5 %, together (torchvision's ``RandomAffine``
# and Keras turn and shift a copy at once), each also mirrored left-right first (a random
# flip, then a random turn and shift: the usual training transforms). A copy between those
# steps is found by the grid, and matched by ``fitted``.
TURNS = (-15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0)
STEPS = (-0.1, -0.05, 0.0, 0.05, 0.1)
NUDGES = both_ways(
    Nudge(degrees, down, right)
    for degrees in TURNS
    for down in STEPS
    for right in STEPS
    if degrees or down or right
)
# Where the fit starts, the closest earlier images are also met in each of the square's eight
# symmetries (mirrored left-right or not, then turned by quarter turns anticlockwise): a copy
# flipped up-down or turned a quarter turn, then turned and shifted a little (histology and
# dermoscopy pipelines flip both ways and turn by quarter turns before a random affine) is
# that symmetry of its original nudged. Comparing every pair so would cost the grid four
# times over.
SYMMETRIES = tuple(SYMMETRY_NAMES)
# ``fitted`` starts half a grid step either way and halves its steps down to 0.3125° and
# 0.3125 % (about a twentieth of a thumbnail pixel at its edge); it goes at most half a grid
# step beyond the grid, and enlarges or shrinks by up to 12.5 % (torchvision's
# ``RandomAffine(scale=(0.9, 1.1))``, Keras's ``zoom_range=0.1``, albumentations'
# ``scale_limit=0.1``).
FIRST_STEP = np.array([2.5, 0.025, 0.025, 0.025])
LAST_STEP = 0.3
BOUNDS = np.array([17.5, 0.125, 0.125, 0.125])


def sparse_grid(scales: tuple[float, ...] = (1.0,)) -> tuple[Nudge, ...]:
    """Turns of 10° and shifts of 7.5 % either way, at each of ``scales``: 27 nudges each."""
    return tuple(
        Nudge(degrees, down, right, scale=scale)
        for degrees in (-10.0, 0.0, 10.0)
        for down in (-0.075, 0.0, 0.075)
        for right in (-0.075, 0.0, 0.075)
        for scale in scales
    )


# A zoom lets images of one modality whose anatomy differs in size come closer (two patients'
# chests, one enlarged to fit the other): a copy matched enlarged or shrunk counts
# ``ZOOM_COST`` less per unit of zoom (0.0075 for 10 %), on the grid and in the fit: less
# would flag more distinct chest X-rays, more would lose more of sharp images' shrunk copies
# (bench/results_near_duplicates.md, "Zoomed"). A zoomed copy's original is often not the
# closest at its own size: the grid's nudges are also met enlarged and shrunk 10 % on a sparser
# grid (``ZOOMED``), and where that finds another start the fit runs from both.
ZOOM_COST = 0.075
ZOOMED = sparse_grid((0.9, 1.1))


def _centres(side: int) -> np.ndarray:
    rows, columns = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing="ij")
    return np.stack([rows, columns], axis=-1).reshape(-1, 2)


def _taps(points: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(…, 4) flat pixel indices and weights: the thumbnail at ``points`` (…, 2), bilinear,
    edges held."""
    source = points - 0.5
    low = np.floor(source).astype(int)
    fraction = source - low
    indices, weights = [], []
    for step_row in (0, 1):
        for step_column in (0, 1):
            row = np.clip(low[..., 0] + step_row, 0, side - 1)
            column = np.clip(low[..., 1] + step_column, 0, side - 1)
            indices.append(row * side + column)
            weights.append(
                (fraction[..., 0] if step_row else 1 - fraction[..., 0])
                * (fraction[..., 1] if step_column else 1 - fraction[..., 1])
            )
    return np.stack(indices, axis=-1), np.stack(weights, axis=-1)


def _sampling(points: np.ndarray, side: int) -> np.ndarray:
    """(len(points), side²): a flat thumbnail times its transpose is the thumbnail sampled at
    ``points``."""
    indices, weights = _taps(points, side)
    matrix = np.zeros((len(points), side * side), np.float32)
    np.add.at(matrix, (np.arange(len(points))[:, None], indices), weights)
    return matrix


_CORNERS = np.array([(-1, -1), (-1, 1), (1, -1), (1, 1)]) * REACH


def _clean(nudges: np.ndarray, points: np.ndarray, side: int) -> np.ndarray:
    """(n, m) bool: whether the copy's thumbnail at each of ``points`` (copy positions) holds
    the original only: the point lies between the copy's pixel centres (the part of the
    original that left the frame is not there), and every position within ``REACH`` of it,
    inside the copy, came from inside the original (no fill)."""
    inside = np.all((points >= 0.5) & (points <= side - 0.5), axis=-1)
    count, many = points.shape[:2]
    around = np.clip(points[:, :, None, :] + _CORNERS, 0, side).reshape(count, many * 4, 2)
    came_from = _to_original(nudges, around, side).reshape(count, many, 4, 2)
    return inside & np.all((came_from >= 0) & (came_from <= side), axis=(2, 3))


@functools.cache
def undoing(nudge: Nudge, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(side², side²) and (side²,) bool: a flat copy's thumbnail times the first's transpose
    is the copy moved back onto the original; the mask keeps the original's pixels whose
    value there came from the original alone."""
    in_copy = nudge.to_copy(_centres(side), side)
    return _sampling(in_copy, side), _clean(nudge.parameters[None], in_copy[None], side)[0]


def _matched(query: np.ndarray, reference: np.ndarray, nudges: np.ndarray, side: int):
    """(n,): each flat ``query`` moved back by its nudge, correlated with its ``reference`` on
    the nudge's mask (−1 where the mask holds no spread)."""
    in_copy = _to_copy(nudges, _centres(side)[None], side)
    indices, weights = _taps(in_copy, side)
    taken = np.take_along_axis(query, indices.reshape(len(query), -1), axis=1)
    moved_back = (taken.reshape(indices.shape) * weights).sum(-1)
    mask = _clean(nudges, in_copy, side)
    count = np.maximum(mask.sum(-1, keepdims=True), 1)
    left = (moved_back - (moved_back * mask).sum(-1, keepdims=True) / count) * mask
    right = (reference - (reference * mask).sum(-1, keepdims=True) / count) * mask
    spread = np.sqrt(np.einsum("nd,nd->n", left, left) * np.einsum("nd,nd->n", right, right))
    products = np.einsum("nd,nd->n", left, right)
    return np.divide(products, spread, out=np.full(len(query), -1.0), where=spread > 1e-3)


_MOVES = np.concatenate([np.eye(4), -np.eye(4)])  # one parameter a step up or down


def _zoom_cost(scales: np.ndarray) -> np.ndarray:
    return ZOOM_COST * np.abs(np.asarray(scales) - 1.0)


def fitted(
    query: np.ndarray, reference: np.ndarray, start: np.ndarray, side: int, zooming: bool = True
):
    """Each flat ``query`` against its ``reference`` row in the nudge that matches them best
    near ``start`` (n, 5; the mirror and the nearest quarter turn kept): a pattern search over
    the turn, the two shifts and (``zooming``) the scale, a step along one of them while that
    matches better, the steps halved where none does. A random turn and shift land anywhere
    between the grid's steps, where a sharp image's correlation drops by a few per cent.
    Returns the correlations less the zoom's cost (n,) and the nudges (n, 5)."""
    query, reference = query.astype(np.float64), reference.astype(np.float64)
    nudges = start.astype(np.float64).copy()
    if not len(nudges):
        return np.empty(0), nudges
    # The bounds are about the start's nearest quarter turn and no zoom: a mirror image or a
    # quarter turn nudged is fitted as far as an upright copy.
    centre = np.zeros((len(nudges), 4))
    centre[:, 0] = np.round(nudges[:, 0] / 90) * 90
    centre[:, 3] = 1.0
    bounds = BOUNDS if zooming else BOUNDS * (1, 1, 1, 0)
    best = _matched(query, reference, nudges, side) - _zoom_cost(nudges[:, 3])
    steps = np.tile(FIRST_STEP, (len(nudges), 1))
    searching = np.arange(len(nudges))
    while len(searching):
        tried = nudges[searching, None].repeat(len(_MOVES), axis=1)
        tried[..., MOVED] += _MOVES * steps[searching, None]
        around = centre[searching, None]
        tried[..., MOVED] = np.clip(tried[..., MOVED], around - bounds, around + bounds)
        scores = _matched(
            query[searching].repeat(len(_MOVES), axis=0),
            reference[searching].repeat(len(_MOVES), axis=0),
            tried.reshape(-1, MIRRORED + 1),
            side,
        ).reshape(len(searching), len(_MOVES)) - _zoom_cost(tried[..., 3])
        move = scores.argmax(axis=1)
        top = scores[np.arange(len(searching)), move]
        better = top > best[searching] + 1e-6
        moved = searching[better]
        nudges[moved], best[moved] = tried[better, move[better]], top[better]
        stuck = searching[~better]
        steps[stuck] /= 2
        searching = np.concatenate([moved, stuck[steps[stuck, 0] >= LAST_STEP]])
    return best, nudges


def _masked_unit(views: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Views (…, nudges, side²), already zero off their nudge's mask (``weights``: 1 on it,
    0 off), made zero mean and unit length on it."""
    mean = views.sum(-1, keepdims=True) / weights.sum(-1, keepdims=True)
    views -= mean
    views *= weights
    norm = np.sqrt(np.einsum("...d,...d->...", views, views))[..., None]
    return np.divide(views, norm, out=views, where=norm > 0)


@functools.cache
def _stacked(nudges: tuple[Nudge, ...], side: int) -> tuple[np.ndarray, np.ndarray]:
    """Every nudge's undoing side by side, (side², nudges · side²), its pixels off the mask
    zero, and the masks as weights (nudges, side²)."""
    pairs = [undoing(nudge, side) for nudge in nudges]
    return (
        np.concatenate([matrix.T * mask for matrix, mask in pairs], axis=1),
        np.stack([mask for _, mask in pairs]).astype(np.float32),
    )


def per_nudge(
    query: np.ndarray,
    reference: np.ndarray,
    candidates: np.ndarray,
    side: int,
    among: tuple[Nudge, ...] = NUDGES,
):
    """(len(query), k, len(among)): each flat ``query`` thumbnail against each of its
    ``candidates`` (rows of ``reference``) in each nudge ``among``, correlated on its mask.
    The query moved back is unit on each mask; the reference's spread on it comes from two
    products with the masks, so no reference is moved or masked one by one."""
    matrix, weights = _stacked(among, side)
    moved_back = _masked_unit((query @ matrix).reshape(len(query), len(among), -1), weights)
    chosen, where = np.unique(candidates, return_inverse=True)
    # The spread in float64: a sum of squares of 0–255 values loses a flat image's small
    # spread in float32.
    wide, wide_weights = reference[chosen].astype(np.float64), weights.astype(np.float64)
    total = wide @ wide_weights.T
    squares = (wide**2) @ wide_weights.T
    spread = np.sqrt(np.maximum(squares - total**2 / wide_weights.sum(-1), 0.0))
    spread = spread.astype(np.float32)[where.reshape(candidates.shape)]  # (n, k, nudges)
    products = np.matmul(reference[candidates], moved_back.transpose(0, 2, 1))
    return np.divide(products, spread, out=np.zeros_like(products), where=spread > 1e-3)


def symmetric(
    flat: np.ndarray, side: int, mirrored: bool, quarters: int, undone: bool = False
) -> np.ndarray:
    """Flat square thumbnails (or masks) mirrored left-right or not, then turned ``quarters``
    quarter turns anticlockwise: what ``Nudge(90 * quarters, mirrored=mirrored)`` makes of
    them; ``undone``: that undone (turned back, then mirrored)."""
    square = flat.reshape(-1, side, side)
    if mirrored and not undone:
        square = square[:, :, ::-1]
    square = np.rot90(square, -quarters if undone else quarters, axes=(1, 2))
    if mirrored and undone:
        square = square[:, :, ::-1]
    return square.reshape(len(flat), -1)


def fitted_closest(
    query: np.ndarray,
    reference: np.ndarray,
    candidates: np.ndarray,
    side: int,
    grid: tuple[Nudge, ...] = NUDGES,
    symmetries: tuple[tuple[bool, int], ...] = SYMMETRIES,
    zoomed: tuple[Nudge, ...] = ZOOMED,
):
    """Each flat ``query`` against the one of its ``candidates`` (rows of ``reference``, (n,
    k)) that a nudge of ``grid`` matches best, in one of the ``symmetries`` (the grid's mirror
    images aside: mirrored left-right is one of them), in the nudge ``fitted`` finds from
    there; and, where a nudge of ``zoomed`` (less its cost) matches another candidate or
    nudge best, from there too, the better fit kept (``zoomed=()``: the fit neither starts
    zoomed nor zooms). Returns the column of ``candidates`` (n,), the correlation less the
    zoom's cost (n,) and the nudge (n, 5)."""
    upright = (Nudge(), *(nudge for nudge in grid if not nudge.mirrored))
    starts = (*upright, *zoomed)
    chosen, where = np.unique(candidates, return_inverse=True)
    # Each candidate in every symmetry, symmetry after symmetry: the copy moved back by an
    # upright nudge is compared with the candidate so turned or mirrored.
    every_way = np.concatenate([symmetric(reference[chosen], side, *s) for s in symmetries])
    rows_of = where.reshape(candidates.shape)[..., None] + len(chosen) * np.arange(len(symmetries))
    on_grid = per_nudge(query, every_way, rows_of.reshape(len(query), -1), side, starts)
    on_grid -= _zoom_cost([nudge.scale for nudge in starts])
    on_grid = on_grid.reshape(len(query), candidates.shape[1], len(symmetries), len(starts))
    column, start = _start(on_grid[..., : len(upright)], upright, symmetries)
    scores, found = fitted(
        query, reference[candidates[np.arange(len(query)), column]], start, side, bool(zoomed)
    )
    if zoomed:
        other_column, other_start = _start(on_grid, starts, symmetries)
        again = np.flatnonzero((other_column != column) | np.any(other_start != start, axis=1))
        other_scores, other_found = fitted(
            query[again],
            reference[candidates[again, other_column[again]]],
            other_start[again],
            side,
        )
        better = other_scores > scores[again]
        kept = again[better]
        column[kept], scores[kept], found[kept] = (
            other_column[kept],
            other_scores[better],
            other_found[better],
        )
    return column, scores, found


def _start(on_grid: np.ndarray, nudges: tuple[Nudge, ...], symmetries) -> tuple:
    """Per query, the candidate's column and the nudge (n, 5) where ``on_grid`` (n, k,
    symmetries, nudges) is highest: the symmetry's quarter turns added to the nudge's turn."""
    flat = on_grid.reshape(len(on_grid), on_grid.shape[1], -1)
    rows = np.arange(len(on_grid))
    column = flat.max(axis=-1).argmax(axis=-1)
    symmetry, nudge = np.divmod(flat[rows, column].argmax(axis=-1), len(nudges))
    start = np.stack([nudges[i].parameters for i in nudge])
    start[:, 0] += 90.0 * np.array([quarters for _, quarters in symmetries])[symmetry]
    start[:, MIRRORED] = np.array([mirrored for mirrored, _ in symmetries])[symmetry]
    return column, start

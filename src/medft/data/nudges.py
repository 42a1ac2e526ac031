"""Copies turned by a few degrees or shifted by a few per cent, as augmentations write them
(Keras's ``rotation_range`` and ``width_shift_range``, torchvision's ``RandomAffine``,
albumentations' ``ShiftScaleRotate``): the part of the copy that came from the original is the
original moved, and the rest is a fill each library makes its own way (black, the nearest
edge, a reflection). So a copy is compared with the original moved back, on the thumbnail's
pixels whose values came from the original only — a mask per nudge, which no fill reaches.

A thumbnail is ``side`` × ``side``; positions are continuous, the image spanning [0, side) on
each axis, pixel ``i``'s centre at ``i + 0.5``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

# How far, in thumbnail pixels, a value sampled from the copy's thumbnail reaches into the
# image: PIL's bilinear filter widens its support to the shrink factor, one thumbnail pixel
# each side, and a sample between pixel centres blends pixels up to one away (1.5 lets the
# gap's fill through: tests/test_duplicates.py).
REACH = 2.0
# Compared on fewer pixels, in hundreds more views, distinct chest X-rays come closer: the
# nudges count this much less (bench/results_near_duplicates.md, "Turned a few degrees, shifted").
MARGIN = 0.01


@dataclass(frozen=True)
class Nudge:
    """A copy mirrored left-right or not, turned ``degrees`` anticlockwise about the centre (as
    PIL's ``rotate``), then shifted by ``down`` and ``right`` of the side."""

    degrees: float = 0.0
    down: float = 0.0
    right: float = 0.0
    mirrored: bool = False

    @property
    def name(self) -> str:
        """What a copy so nudged is of its original, in words."""
        parts = ["mirrored left-right"] if self.mirrored else []
        if self.degrees:
            way = "anticlockwise" if self.degrees > 0 else "clockwise"
            parts.append(f"turned {abs(self.degrees):g}° {way}")
        moves = [
            f"{abs(share) * 100:g} % {word[share > 0]}"
            for share, word in ((self.right, ("left", "right")), (self.down, ("up", "down")))
            if share
        ]
        if moves:
            parts.append("shifted " + " and ".join(moves))
        return ", then ".join(parts)

    def to_copy(self, points: np.ndarray, side: int) -> np.ndarray:
        """Where the original's ``points`` (…, 2: row, column) lie in the copy."""
        if self.mirrored:
            points = _mirror(points, side)
        angle = np.deg2rad(self.degrees)
        centre = side / 2
        row, column = points[..., 0] - centre, points[..., 1] - centre
        # Anticlockwise on screen, rows growing downwards: a point right of the centre rises.
        turned_row = np.cos(angle) * row - np.sin(angle) * column
        turned_column = np.sin(angle) * row + np.cos(angle) * column
        return np.stack(
            [turned_row + centre + self.down * side, turned_column + centre + self.right * side],
            axis=-1,
        )

    def to_original(self, points: np.ndarray, side: int) -> np.ndarray:
        """Where the copy's ``points`` came from in the original (``to_copy`` undone)."""
        turned_back = Nudge(-self.degrees)
        back = turned_back.to_copy(points - np.array([self.down, self.right]) * side, side)
        return _mirror(back, side) if self.mirrored else back


def _mirror(points: np.ndarray, side: int) -> np.ndarray:
    return np.stack([points[..., 0], side - points[..., 1]], axis=-1)


# Every pair is compared in shifts in steps of 2.5 % of the side (0.4 of a 16-px thumbnail's
# pixel) up to 10 % either way on either axis, and turns in steps of 2.5° up to 15° either way;
# each also mirrored left-right first (a random flip, then a random turn or shift: the usual
# training transforms).
STEPS = (-0.1, -0.075, -0.05, -0.025, 0.0, 0.025, 0.05, 0.075, 0.1)
TURNS = (-15.0, -12.5, -10.0, -7.5, -5.0, -2.5, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0)


def _both_ways(nudges) -> tuple[Nudge, ...]:
    nudges = tuple(nudges)
    return (*nudges, *(Nudge(n.degrees, n.down, n.right, mirrored=True) for n in nudges))


NUDGES = _both_ways(
    [
        *(Nudge(0.0, down, right) for down in STEPS for right in STEPS if down or right),
        *(Nudge(degrees) for degrees in TURNS),
    ]
)
# A copy between those steps (a random shift is anywhere) loses up to a fifth of a pixel each
# way: each evaluation image's closest earlier images are compared in the steps between too
# (``finer``).
FINE_STEPS = tuple(np.arange(-0.1, 0.101, 0.0125).round(4).tolist())
FINE = _both_ways(
    [
        *(
            Nudge(0.0, down, right)
            for down in FINE_STEPS
            for right in FINE_STEPS
            if (down or right) and Nudge(0.0, down, right) not in NUDGES
        ),
        *(Nudge(degrees) for degrees in np.arange(-13.75, 13.8, 2.5).tolist()),
    ]
)


def _centres(side: int) -> np.ndarray:
    rows, columns = np.meshgrid(np.arange(side) + 0.5, np.arange(side) + 0.5, indexing="ij")
    return np.stack([rows, columns], axis=-1).reshape(-1, 2)


def _sampling(points: np.ndarray, side: int) -> np.ndarray:
    """(len(points), side²): a flat thumbnail times its transpose is the thumbnail sampled at
    ``points`` (bilinear, edges held)."""
    source = points - 0.5
    low = np.floor(source).astype(int)
    fraction = source - low
    weights = np.zeros((len(points), side * side), np.float32)
    for step_row in (0, 1):
        for step_column in (0, 1):
            row = np.clip(low[:, 0] + step_row, 0, side - 1)
            column = np.clip(low[:, 1] + step_column, 0, side - 1)
            weight = (fraction[:, 0] if step_row else 1 - fraction[:, 0]) * (
                fraction[:, 1] if step_column else 1 - fraction[:, 1]
            )
            np.add.at(weights, (np.arange(len(points)), row * side + column), weight)
    return weights


def _clean(nudge: Nudge, points: np.ndarray, side: int) -> np.ndarray:
    """Whether the copy's thumbnail at each of ``points`` (copy positions) holds the original
    only: the point lies between the copy's pixel centres (the part of the original that
    left the frame is not there), and every position within ``REACH`` of it, inside the copy,
    came from inside the original (no fill)."""
    inside = np.all((points >= 0.5) & (points <= side - 0.5), axis=1)
    corners = np.array([(-1, -1), (-1, 1), (1, -1), (1, 1)]) * REACH
    around = np.clip(points[:, None, :] + corners[None], 0, side)
    came_from = nudge.to_original(around, side)
    return inside & np.all((came_from >= 0) & (came_from <= side), axis=(1, 2))


@functools.cache
def undoing(nudge: Nudge, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(side², side²) and (side²,) bool: a flat copy's thumbnail times the first's transpose
    is the copy moved back onto the original; the mask keeps the original's pixels whose
    value there came from the original alone."""
    centres = _centres(side)
    in_copy = nudge.to_copy(centres, side)
    return _sampling(in_copy, side), _clean(nudge, in_copy, side)


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


def finer(
    query: np.ndarray,
    reference: np.ndarray,
    candidates: np.ndarray,
    side: int,
    among: tuple[Nudge, ...] = FINE,
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

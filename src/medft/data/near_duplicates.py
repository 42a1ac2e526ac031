"""Near-duplicate images across splits: the same picture re-saved, resized, cropped at its
borders, brightened, mirrored, turned by quarter turns or made grey, which exact pixel hashing
(``medft.data.duplicates``) cannot see.

Every stored image keeps a 16 × 16 grey thumbnail (bilinear, 256 bytes in the manifest).
Two images are near-duplicates when their thumbnails correlate at ``THRESHOLD`` or more
(Pearson, each thumbnail against the other's in its eight orientations — as it is, mirrored,
turned by quarter turns: ``ORIENTATIONS`` —, the same eight on the order of their pixels'
tones, which a gamma, an autocontrast or a histogram equalisation keeps where the values'
correlation drops (``_ranked``), and against either one zoomed about its centre, an edge's
middle or a corner — ``ZOOMS``, the views of a copy whose borders were cut):
re-encoding, resizing, border crops and small
brightness changes barely move a thumbnail so compared, while distinct images of one modality
differ in where their structures lie. An evaluation image that close to an earlier split's
image is a pair; pairs exact hashing already found, and blank images, are left to it. The
threshold and the default policy were chosen on real images
(``bench/results_near_duplicates.md``: recall on made copies, flagged pairs among distinct
images). The dataset's ``near_duplicates`` option:

* ``warn`` (default): the pairs are logged and listed, with thumbnails, in the data card;
* ``error``: preparation stops, naming the first pairs;
* ``drop_from_eval``: those evaluation images are dropped, listed like the exact ones.

A copy both cropped and mirrored or turned (an augmentation's random crop and flip) is compared
in those combined views only against each evaluation image's ``CANDIDATES`` closest earlier
images by a coarse comparison (8 × 8 thumbnails, ``COARSE_ZOOMS``): for every pair they would
be 756 views more than the 124 above (``bench/results_near_duplicates.md``, "Cropped and
turned": recall, flags and time).

A copy turned by a few degrees and shifted, perhaps enlarged or shrunk a little (an
augmentation's random rotation, shift and zoom, the gap filled however its library fills it)
is compared with the original moved back, on the thumbnail pixels no fill reaches
(``medft.data.nudges``), as it is and mirrored left-right first (a random flip, then a turn
and shift): every pair on a grid of turns and shifts together in steps of 5° and 5 %
(``NUDGES``); each evaluation image's closest earlier image on that grid, of its ``CLOSEST``
and of its ``SYMMETRIC_CLOSEST`` (the closest on a sparser grid after an up-down flip or a
quarter or half turn: pipelines that flip both ways), in the turn, shift and zoom fitted to it
between the steps in whichever of the square's eight symmetries matches best
(``nudges.fitted``; also from the closest on the sparser grid enlarged and shrunk 10 %,
``FIT_ZOOMED``); those views count ``nudges.MARGIN`` less, and a zoom ``nudges.ZOOM_COST``
less per unit.

Not caught: crops of more than about 10 % a side (13 % off one side), turns beyond 17.5°,
shifts beyond 10 % or zooms beyond 12.5 % (the bench's "What it misses"), a colour image's
channels remapped each its own way (its grey tones then change order:
``bench/results_near_duplicates_tone.md``); fine-grained images (blood-cell smears) lose some
cropped copies to the thumbnail's blur (PBC: 61–95 % caught) and most shrunk ones (9–11 %).
Images of two patients can also correlate this closely where a modality's images are alike
(the bench counts such flags), and more of them the more earlier images there are
(``bench/results_near_duplicates_scale.md``): that is why the default warns, and why the data
card shows every evaluation image's closest similarity beside the pairs (``closeness``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medft.data import nudges
from medft.data.nudges import MARGIN as NUDGE_MARGIN
from medft.data.nudges import NUDGES, Nudge, undoing
from medft.errors import DataError

POLICIES = ("warn", "error", "drop_from_eval")
# Thumbnail correlation at or above which two images are near-duplicates
# (bench/results_near_duplicates.md).
THRESHOLD = 0.975
SIDE = 16
CENTRE = SIDE / 2


@dataclass(frozen=True)
class Zoom:
    """A view of a thumbnail zoomed in by ``factor`` about ``anchor`` (row, column in
    thumbnail pixels, the point that stays put); its correlation counts ``margin`` less."""

    factor: float
    anchor: tuple[float, float]
    margin: float

    @property
    def place(self) -> str:
        """Where the zoom is anchored, in words: the part of the picture a crop kept."""
        vertical = {0.0: "top", CENTRE: "", float(SIDE): "bottom"}[self.anchor[0]]
        horizontal = {0.0: "left", CENTRE: "", float(SIDE): "right"}[self.anchor[1]]
        if vertical and horizontal:
            return f"the {vertical}-{horizontal} corner"
        return f"the {vertical or horizontal} edge" if vertical or horizontal else "the centre"

    @property
    def described(self) -> str:
        return f"{self.factor:g}× about {self.place}"


# A copy with c cut off every side is the original zoomed by 1 / (1 − 2c) about its centre:
# up to 1.3 covers c up to ~11 %, in steps that keep a sharp image's mismatch under 2.5 %. Cut
# off one side (a banner) or two adjacent ones, it is the original zoomed about the opposite
# edge's middle or corner: up to 1.15, c up to ~13 %, in steps of 0.025 (steps of 0.05 lost
# most such crops of blood-cell smears). Those 48 views move the content too, so they count
# 0.005 less: counted in full they flag more distinct chest X-rays
# (bench/results_near_duplicates.md, "no margin").
ZOOMS = (
    *(Zoom(f, (CENTRE, CENTRE), 0.0) for f in (1.05, 1.1, 1.15, 1.2, 1.25, 1.3)),
    *(
        Zoom(f, (row, column), 0.005)
        for f in (1.025, 1.05, 1.075, 1.1, 1.125, 1.15)
        for row in (0.0, CENTRE, float(SIDE))
        for column in (0.0, CENTRE, float(SIDE))
        if (row, column) != (CENTRE, CENTRE)
    ),
)

# The tone-order views (``_ranked``) count this much less, so that a pair alike in its values
# is named by the plain view (a re-saved copy's ranks correlate a hair more than its values).
TONE_MARGIN = 0.001


@dataclass(frozen=True)
class Orientation:
    """One of the square thumbnail's eight symmetries: transposed, then flipped. Quarter turns
    are how augmented collections copy images (histology patches, dermoscopy, MRI slices);
    stored images are square crops of the shorter side, so a turned original's crop is the
    original's crop turned."""

    transpose: bool
    flip_rows: bool  # up-down
    flip_columns: bool  # left-right

    def of(self, thumbnails: np.ndarray) -> np.ndarray:
        """``thumbnails`` (n, SIDE, SIDE) so oriented."""
        turned = thumbnails.transpose(0, 2, 1) if self.transpose else thumbnails
        return turned[:, :: -1 if self.flip_rows else 1, :: -1 if self.flip_columns else 1]

    @property
    def inverse(self) -> Orientation:
        """The orientation that undoes this one (a transpose carries a flip to the other
        axis; the mirror images and the half turn undo themselves)."""
        if not self.transpose:
            return self
        return Orientation(True, self.flip_columns, self.flip_rows)

    @property
    def name(self) -> str:
        """What a copy so oriented is of its original: the name of the symmetry of
        ``nudges.SYMMETRIES`` (a mirror or not, then quarter turns) that moves pixels as this
        does (a transpose flipped left-right is the original turned clockwise)."""
        probe = np.arange(4.0).reshape(1, 2, 2)
        moved = self.of(probe).reshape(1, -1)
        return next(
            name
            for symmetry, name in nudges.SYMMETRY_NAMES.items()
            if np.array_equal(nudges.symmetric(probe.reshape(1, -1), 2, *symmetry), moved)
        )


# As it is first, then the mirror images (left-right, up-down), the half turn, and the four
# with rows and columns exchanged (the quarter turns and the two diagonal mirror images).
ORIENTATIONS = tuple(
    Orientation(transpose, rows, columns)
    for transpose in (False, True)
    for rows, columns in ((False, False), (False, True), (True, False), (True, True))
)
# The orientations compared on the order of the tones (``_ranked``) as well: all of them.
TONE_ORIENTATIONS = ORIENTATIONS
ORDER = {"train": 0, "val": 1, "test": 2}
SHOWN = 5
RANK_BLOCK = 8192  # thumbnails ranked at once (``_ranked``)
CHUNK = 1024  # evaluation images compared at once, at most
# Similarities held per matrix (256 MB): a chunk has fewer rows against a larger earlier split,
# so a prepare job's few such matrices stay within its 4 GB whatever the split's size.
CELLS = 2**26
log = logging.getLogger(__name__)


def thumbnail(image: np.ndarray, resample: str = "BILINEAR") -> bytes:
    """``image`` (H, W, C uint8) as a SIDE × SIDE grey thumbnail, for the manifest.
    ``resample``: PIL's filter; the bench measures the box filter used before against it."""
    from PIL import Image

    grey = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).convert("L")
    # Bilinear (PIL widens its support when shrinking): a copy cropped by a few pixels then
    # shifts its thumbnail smoothly, where box averages jump from one pixel to the next.
    return grey.resize((SIDE, SIDE), Image.Resampling[resample]).tobytes()


@functools.cache
def _zoom_matrix(zoom: Zoom, side: int = SIDE) -> np.ndarray:
    """(side², side²): a flat side × side thumbnail times its transpose is the thumbnail as
    ``zoom`` views it (bilinear, edges held; the anchor scaled to ``side``)."""

    def along(anchor: float) -> np.ndarray:  # one axis: output pixel → input pixels
        source = anchor + (np.arange(side) + 0.5 - anchor) / zoom.factor - 0.5
        low = np.floor(source).astype(int)
        weights = np.zeros((side, side), np.float32)
        for index, weight in ((low, 1 - (source - low)), (low + 1, source - low)):
            np.add.at(weights, (np.arange(side), np.clip(index, 0, side - 1)), weight)
        return weights

    scale = side / SIDE
    return np.kron(along(zoom.anchor[0] * scale), along(zoom.anchor[1] * scale))


def _unit(views: np.ndarray) -> np.ndarray:
    """Flat views, each zero mean and unit length (a blank one stays zero)."""
    views = views - views.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(views, axis=-1, keepdims=True)
    return np.divide(views, norm, out=np.zeros_like(views), where=norm > 0)


def _ranked(flat: np.ndarray) -> np.ndarray:
    """Each flat thumbnail's pixels replaced by their ranks within it (ties averaged): the
    same for every remapping of its tones that keeps their order — a gamma, an autocontrast, a
    histogram equalisation — where a correlation of the values holds only for a straight line.
    In blocks of rows: scipy ranks in float64 with index arrays beside, which for CheXpert's
    223,414 training thumbnails at once held 1.3 GB more than the check's other matrices."""
    from scipy.stats import rankdata

    ranked = np.empty(flat.shape, np.float32)
    for start in range(0, len(flat), RANK_BLOCK):
        ranked[start : start + RANK_BLOCK] = rankdata(flat[start : start + RANK_BLOCK], axis=1)
    return ranked


def _flat(thumbnails) -> np.ndarray:
    return np.stack([np.frombuffer(t, np.uint8) for t in thumbnails]).astype(np.float32)


@dataclass(frozen=True)
class View:
    """One way two thumbnails are compared: each as it is, or transformed (flat → flat)."""

    name: str  # what the evaluation image is of the earlier one, where this view matches
    query: Callable[[np.ndarray], np.ndarray] | None
    reference: Callable[[np.ndarray], np.ndarray] | None
    margin: float
    mask: np.ndarray | None = None  # the pixels compared, where not all
    ranked: bool = False  # on the order of each thumbnail's tones (``_ranked``), not its values


def views() -> list[View]:
    """The query against the reference in each of its ``ORIENTATIONS`` (mirrored, turned);
    then, at every zoom, the query against the zoomed reference (the query cropped from the
    reference) and the zoomed query against the reference (the other way round). A copy both
    turned (or mirrored) and cropped is compared on candidates only: ``_turned_and_cropped``."""

    def oriented(orientation: Orientation):
        return lambda flat: orientation.of(flat.reshape(-1, SIDE, SIDE)).reshape(len(flat), -1)

    def zoomed(zoom: Zoom):
        matrix = _zoom_matrix(zoom).T
        return lambda flat: flat @ matrix

    def moved_back(matrix: np.ndarray):
        return lambda flat: flat @ matrix.T

    found = [View(o.name, None, oriented(o), 0.0) for o in ORIENTATIONS]
    found += [
        View(f"{o.name}, its tones remapped", None, oriented(o), TONE_MARGIN, ranked=True)
        for o in TONE_ORIENTATIONS
    ]
    for zoom in ZOOMS:
        how = zoom.described
        found.append(View(f"cropped from it ({how})", None, zoomed(zoom), zoom.margin))
        found.append(View(f"it is cropped from this ({how})", zoomed(zoom), None, zoom.margin))
    for nudge in NUDGES:
        matrix, mask = undoing(nudge, SIDE)
        found.append(View(nudge.name, moved_back(matrix), None, NUDGE_MARGIN, mask))
    return found


def _units(
    query: np.ndarray, reference: np.ndarray
) -> Iterator[tuple[View, np.ndarray, np.ndarray]]:
    """Each view and the two sides as it compares them, each row unit."""
    as_it_is = {False: (_unit(query), _unit(reference))}
    values = {False: (query, reference)}
    for view in views():
        if view.ranked not in values:  # once, for every view on the tones' order
            # Unit already: the orientations only permute pixels, so the units stand for the
            # ranks themselves (one matrix per side, not two).
            values[True] = as_it_is[True] = tuple(_unit(_ranked(side)) for side in values[False])
        query, reference = values[view.ranked]
        query_as_it_is, reference_as_it_is = as_it_is[view.ranked]
        if view.mask is None:
            left = query_as_it_is if view.query is None else _unit(view.query(query))
            right = (
                reference_as_it_is if view.reference is None else _unit(view.reference(reference))
            )
        else:  # on the mask's pixels only
            left = _unit((query if view.query is None else view.query(query))[:, view.mask])
            right = _unit(
                (reference if view.reference is None else view.reference(reference))[:, view.mask]
            )
        yield view, left, right


def _scores(query: np.ndarray, reference: np.ndarray) -> Iterator[tuple[View, np.ndarray]]:
    """Each view and its correlations less its margin, (len(query), len(reference)); one at a
    time, so memory stays at a few such matrices whatever the number of views."""
    for view, left, right in _units(query, reference):
        score = left @ right.T
        if view.margin:
            score -= view.margin  # in place: one matrix per view, not two
        yield view, score


# Each evaluation image's earlier images most alike in a coarse comparison of the combined
# views (turned or mirrored, and cropped), compared then at full size: as many made copies
# caught as comparing every pair would, but 2 % of PneumoniaMNIST's centre crops
# (bench/results_near_duplicates.md, "Cropped and turned").
CANDIDATES = 32
COARSE = 8  # side of the coarse thumbnails: a quarter of the pixels
# At 8 px a zoom step of 0.025 moves content by a fifth of a pixel: every other step suffices.
COARSE_ZOOMS = tuple(
    z
    for z in ZOOMS
    if z.factor in ((1.1, 1.2, 1.3) if z.anchor == (CENTRE, CENTRE) else (1.05, 1.1, 1.15))
)
BLOCK = 64  # evaluation images whose candidates are zoomed at once: ~0.5 GB at most


def _combining() -> bool:
    return bool(CANDIDATES and ZOOMS and len(ORIENTATIONS) > 1)


def _margins() -> np.ndarray:
    return np.array([zoom.margin for zoom in ZOOMS], np.float32)


def _turned(flat: np.ndarray) -> np.ndarray:
    """(n, orientations − 1, d): flat square thumbnails in every orientation but as they are,
    each unit."""
    side = round(np.sqrt(flat.shape[1]))
    square = flat.reshape(-1, side, side)
    return _unit(np.stack([o.of(square).reshape(len(flat), -1) for o in ORIENTATIONS[1:]], 1))


@functools.cache
def _zooms_stacked(zooms: tuple[Zoom, ...], side: int) -> np.ndarray:
    return np.concatenate([_zoom_matrix(zoom, side).T for zoom in zooms], axis=1)


def _cropped(flat: np.ndarray, zooms: tuple[Zoom, ...], side: int = SIDE) -> np.ndarray:
    """(n, len(zooms), d): flat side × side thumbnails as each zoom views them, each unit."""
    return _unit((flat @ _zooms_stacked(zooms, side)).reshape(len(flat), len(zooms), -1))


def _coarse(flat: np.ndarray) -> np.ndarray:
    pool = SIDE // COARSE
    return flat.reshape(-1, COARSE, pool, COARSE, pool).mean(axis=(2, 4)).reshape(len(flat), -1)


def _candidates(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(len(query), k): per query, the ``CANDIDATES`` references most alike in the combined
    views of the coarse thumbnails (margins aside: they only rank)."""
    q, r = _coarse(query), _coarse(reference)
    q_turned, r_turned = _turned(q), _turned(r)
    best = np.full((len(q), len(r)), -1.0, np.float32)
    scores = np.empty_like(best)  # one buffer: the products are memory-bound at this size
    for zoom in COARSE_ZOOMS:
        matrix = _zoom_matrix(zoom, COARSE).T
        q_zoomed, r_zoomed = _unit(q @ matrix), _unit(r @ matrix)
        for turn in range(q_turned.shape[1]):
            np.maximum(best, np.matmul(q_turned[:, turn], r_zoomed.T, out=scores), out=best)
            np.maximum(best, np.matmul(q_zoomed, r_turned[:, turn].T, out=scores), out=best)
    k = min(CANDIDATES, len(r))
    return np.argpartition(best, len(r) - k, axis=1)[:, len(r) - k :]


def _combined(q_turned, q_cropped, r_turned, r_cropped, margins) -> np.ndarray:
    """One query's combined views against k references': (k, 2, zooms, orientations − 1),
    correlations less the zoom's margin. [:, 0]: the query turned is a crop of the reference;
    [:, 1]: the reference turned is a crop of the query."""
    query_cropped_from = r_cropped @ q_turned.T
    reference_cropped_from = q_cropped @ r_turned.transpose(0, 2, 1)
    both = np.stack([query_cropped_from, reference_cropped_from], axis=1)
    return both - margins[:, None]


def _combined_name(direction: int, zoom: Zoom, turn: Orientation) -> str:
    if direction == 0:  # turn(query) ≈ zoom(reference): the query is a crop, then turned back
        return f"cropped from it ({zoom.described}), then {turn.inverse.name}"
    return f"it, {turn.name}, is cropped from this ({zoom.described})"


def _turned_and_cropped(query: np.ndarray, reference: np.ndarray, candidates) -> np.ndarray:
    """(len(query), k): each query against its ``candidates`` in the combined views."""
    margins = _margins()
    scores = np.empty(candidates.shape, np.float32)
    for start in range(0, len(query), BLOCK):
        block = candidates[start : start + BLOCK]
        chosen, where = np.unique(block, return_inverse=True)
        where = where.reshape(block.shape)
        queries = query[start : start + BLOCK]
        q_turned, q_cropped = _turned(queries), _cropped(queries, ZOOMS)
        r_turned, r_cropped = _turned(reference[chosen]), _cropped(reference[chosen], ZOOMS)
        for i, picked in enumerate(where):
            views_of_pair = _combined(
                q_turned[i], q_cropped[i], r_turned[picked], r_cropped[picked], margins
            )
            scores[start + i] = views_of_pair.reshape(len(picked), -1).max(axis=1)
    return scores


# Each evaluation image's earlier images closest after the comparison of every pair, and its
# ``SYMMETRIC_CLOSEST``, among which the one closest on the nudges' grid, in any of the
# square's symmetries (``FIT_SYMMETRIES``), gets a turn, shift and zoom fitted
# (bench/results_near_duplicates.md, "Turned a few degrees, shifted").
CLOSEST = 32
FIT_SYMMETRIES = nudges.SYMMETRIES
# The fit also starts from these nudges enlarged and shrunk, and zooms (``nudges.ZOOMED``).
FIT_ZOOMED = nudges.ZOOMED
# A copy in another of the square's symmetries (flipped up-down, turned by quarter turns),
# then turned and shifted at random, meets no view of every pair, and its original is rarely
# among those closest. It is found among the closest on a sparser grid (turns of 10°, shifts of
# 7.5 %) in those six symmetries, compared only to pick what the fit meets: the full grid in
# them would cost every pair four times the nudges.
SYMMETRIC_CLOSEST = 32
SPARSE_NUDGES = nudges.sparse_grid()
OTHER_SYMMETRIES = tuple(s for s in nudges.SYMMETRIES if s[1])  # NUDGES has the mirror


def _symmetric_closest(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(len(query), k): per query, the ``SYMMETRIC_CLOSEST`` references most alike, moved back
    by a nudge of ``SPARSE_NUDGES``, in one of the ``OTHER_SYMMETRIES`` (on the nudge's mask;
    each query moved back and turned, so that no reference is turned)."""
    best = np.full((len(query), len(reference)), -1.0, np.float32)
    scores = np.empty_like(best)
    for nudge in SPARSE_NUDGES:
        matrix, mask = undoing(nudge, SIDE)
        moved_back = query @ matrix.T
        for symmetry in OTHER_SYMMETRIES:
            kept = nudges.symmetric(mask[None], SIDE, *symmetry, undone=True)[0]
            turned = nudges.symmetric(moved_back, SIDE, *symmetry, undone=True)
            left, right = _unit(turned[:, kept]), _unit(reference[:, kept])
            np.maximum(best, np.matmul(left, right.T, out=scores), out=best)
    k = min(SYMMETRIC_CLOSEST, len(reference))
    return np.argpartition(best, len(reference) - k, axis=1)[:, len(reference) - k :]


def _fitting() -> bool:
    return bool(CLOSEST and NUDGES)


def _fitted(query: np.ndarray, reference: np.ndarray, closest: np.ndarray):
    """(len(query),) the column of ``closest`` fitted and its correlation less the margin."""
    columns = np.empty(len(query), int)
    scores = np.empty(len(query), np.float32)
    for start in range(0, len(query), BLOCK):
        part = slice(start, start + BLOCK)
        columns[part], scores[part], _ = nudges.fitted_closest(
            query[part], reference, closest[part], SIDE, NUDGES, FIT_SYMMETRIES, FIT_ZOOMED
        )
    return columns, scores - NUDGE_MARGIN


def similarity(query, reference) -> np.ndarray:
    """How alike each ``query`` thumbnail is to each ``reference`` thumbnail: the highest
    correlation of their ``views``, less the view's margin; for the query's reference closest
    on the nudges' grid among its closest so far and its ``_symmetric_closest``, in the nudge
    fitted between those steps (``nudges.fitted``); and for each query's ``_candidates`` of
    the combined views (turned or mirrored, and cropped) — (len(query), len(reference))."""
    q, r = _flat(query), _flat(reference)
    fitting = _fitting() and len(q) and len(r)
    # Before the comparison of every pair: their matrices are not held at once.
    symmetric = _symmetric_closest(q, r) if fitting and SYMMETRIC_CLOSEST else None
    best = np.full((len(q), len(r)), -1.0, np.float32)
    for _, score in _scores(q, r):
        np.maximum(best, score, out=best)
    if fitting:
        k = min(CLOSEST, len(r))
        closest = np.argpartition(best, len(r) - k, axis=1)[:, len(r) - k :]
        if symmetric is not None:
            closest = np.concatenate([closest, symmetric], axis=1)
        columns, fit = _fitted(q, r, closest)
        rows, fitted_to = np.arange(len(q)), closest[np.arange(len(q)), columns]
        best[rows, fitted_to] = np.maximum(best[rows, fitted_to], fit)
    if _combining() and len(q) and len(r):
        candidates = _candidates(q, r)
        rows = np.arange(len(q))[:, None]
        combined = _turned_and_cropped(q, r, candidates)
        best[rows, candidates] = np.maximum(best[rows, candidates], combined)
    return best


def closest_views(queries: list[bytes], references: list[bytes]) -> list[str]:
    """The name of the view in which each of ``queries`` is most like the one of
    ``references`` at its place (for the card): all pairs at once, view by view."""
    names = []
    for start in range(0, len(queries), BLOCK):
        q = _flat(queries[start : start + BLOCK])
        r = _flat(references[start : start + BLOCK])
        scores, labels = [], []  # a label: one name for every pair, or a name per pair
        for view, left, right in _units(q, r):
            scores.append(np.einsum("ij,ij->i", left, right) - view.margin)
            labels.append(view.name)
        if _fitting():
            _, fit, found = nudges.fitted_closest(
                q, r, np.arange(len(q))[:, None], SIDE, NUDGES, FIT_SYMMETRIES, FIT_ZOOMED
            )
            scores.append(fit - NUDGE_MARGIN)
            labels.append([Nudge.of(nudge).name for nudge in found])
        if _combining():
            q_turned, q_cropped = _turned(q), _cropped(q, ZOOMS)
            r_turned, r_cropped = _turned(r), _cropped(r, ZOOMS)
            margins = _margins()
            combined = np.stack(
                [
                    _combined(q_turned[i], q_cropped[i], r_turned[[i]], r_cropped[[i]], margins)[0]
                    for i in range(len(q))
                ]
            )
            flat = combined.reshape(len(q), -1)
            where = [np.unravel_index(i, combined.shape[1:]) for i in flat.argmax(axis=1)]
            scores.append(flat.max(axis=1))
            labels.append(
                [_combined_name(int(d), ZOOMS[z], ORIENTATIONS[1 + t]) for d, z, t in where]
            )
        # the first of equals: the simplest view
        best = np.stack(scores, axis=1).argmax(axis=1)
        names += [
            labels[b] if isinstance(labels[b], str) else labels[b][i] for i, b in enumerate(best)
        ]
    return names


def pairs(manifest: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Evaluation images whose thumbnail correlates at ``threshold`` or more with an earlier
    split's image (mirrored, turned or zoomed: ``similarity``), exact copies and blank images
    aside: id, split, near_of, near_split, similarity and the view that matched
    (``closest_views``); the closest earlier image per evaluation image."""
    return search(manifest, threshold)[0]


def search(
    manifest: pd.DataFrame, threshold: float = THRESHOLD
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``pairs``, and per evaluation split every image's similarity to its closest earlier
    image (``closeness`` summarises them for the data card)."""
    from medft.runtime import progress  # imports torch: not for the planner's option checks

    columns = ["id", "split", "near_of", "near_split", "similarity", "view"]
    if "thumbnail" not in manifest:
        return pd.DataFrame(columns=columns), {}
    content = manifest[~manifest["blank"].astype(bool)] if "blank" in manifest else manifest
    rank = content["split"].map(ORDER).to_numpy()
    found, pairs_of, closest = [], [], {}
    for split in ("val", "test"):
        later, earlier = content[content["split"] == split], content[rank < ORDER[split]]
        if later.empty or earlier.empty:
            continue
        hashes = earlier["pixel_hash"].to_numpy()
        # minutes on a large split (bench/results_near_duplicates.md, "Time"): a line a minute
        rows = max(1, min(CHUNK, CELLS // len(earlier)))
        chunks = range(0, len(later), rows)
        bests = []
        for start in progress(chunks, len(chunks), f"near copies, {split}", unit="chunks"):
            part = later.iloc[start : start + rows]
            close = similarity(part["thumbnail"], earlier["thumbnail"])
            close[part["pixel_hash"].to_numpy()[:, None] == hashes[None]] = -1.0
            nearest = close.argmax(axis=1)
            best = close[np.arange(len(part)), nearest]
            bests.append(best)
            for i in np.flatnonzero(best >= threshold):
                other = earlier.iloc[nearest[i]]
                found.append(
                    (part["id"].iloc[i], split, other["id"], other["split"], float(best[i]))
                )
                pairs_of.append((part["thumbnail"].iloc[i], other["thumbnail"]))
        closest[split] = np.concatenate(bests)
    named = closest_views([q for q, _ in pairs_of], [r for _, r in pairs_of])
    return pd.DataFrame(
        [(*row, name) for row, name in zip(found, named, strict=True)], columns=columns
    ), closest


# The data card's histogram of the closest earlier image's similarity: how the flagged pairs
# stand against the rest (a cluster near 1 of copies, or the top of the spread of distinct
# images of one modality, which rises with the size of the earlier splits).
CLOSENESS_BINS = np.round(np.arange(0.80, 1.0001, 0.005), 3)
CLOSENESS_QUANTILES = (50, 90, 99)


def closeness(closest: np.ndarray) -> dict:
    """What meta.json keeps of one split's closest-earlier similarities: their count,
    quantiles and a histogram over ``CLOSENESS_BINS``, with how many fall below it."""
    counts, _ = np.histogram(closest, CLOSENESS_BINS)
    return {
        "images": int(len(closest)),
        "quantiles": {
            str(q): round(float(v), 4)
            for q, v in zip(
                CLOSENESS_QUANTILES, np.percentile(closest, CLOSENESS_QUANTILES), strict=True
            )
        },
        "bins": CLOSENESS_BINS.tolist(),
        "counts": counts.tolist(),
        "below": int((closest < CLOSENESS_BINS[0]).sum()),
    }


def _spread(closest: dict) -> str:
    """One sentence on how the evaluation images' closest earlier images spread: where the
    flagged ones are its top rather than apart near 1, they may be distinct images alike."""
    splits = "; ".join(
        f"{split} median {c['quantiles']['50']:.3f}, 99th percentile {c['quantiles']['99']:.3f}"
        for split, c in closest.items()
    )
    return (
        f"Each evaluation image's closest earlier image: r {splits}. Copies stand apart near "
        "1; distinct images of one modality spread below, and the more earlier images, the "
        "closer their top (the data card's histogram)."
    )


def resolve(
    manifest: pd.DataFrame, policy: str, dataset: str, every: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """The manifest to write and what meta.json records: ``every`` is ``manifest`` with the
    training images subsampling removed (they are still a training image's near copy)."""
    if policy not in POLICIES:
        raise DataError(
            f"dataset {dataset!r}: near_duplicates must be one of {', '.join(POLICIES)}"
        )
    every = every[every["id"].isin(manifest["id"]) | (every["split"] == "train")]
    found, closest = search(every)
    record = {
        "policy": policy,
        "threshold": THRESHOLD,
        "pairs": found.to_dict("records"),
        "closest": {split: closeness(values) for split, values in closest.items()},
    }
    if found.empty:
        return manifest, record
    shown = "; ".join(
        f"{r.split} {r.id!r} ~ {r.near_split} {r.near_of!r} (r = {r.similarity:.3f})"
        for r in found.head(SHOWN).itertuples()
    )
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    spread = _spread(record["closest"])
    if policy == "error":
        raise DataError(
            f"dataset {dataset!r}: {len(found)} evaluation image(s) are near copies of an "
            f"earlier split's image (thumbnail correlation ≥ {THRESHOLD}): {shown}{more}. "
            f"{spread} Look at them (a re-saved or resized copy is leakage), then remove them, "
            "or set `near_duplicates: drop_from_eval` or `warn`."
        )
    if policy == "warn":
        log.warning(
            "dataset %r: %d evaluation image(s) look like near copies of an earlier split's "
            "image: %s%s. %s Listed in the data card (`near_duplicates: drop_from_eval` drops "
            "them)",
            dataset,
            len(found),
            shown,
            more,
            spread,
        )
        return manifest, record
    from medft.data.duplicates import drop_from_eval

    return drop_from_eval(manifest, found, dataset, "is a near copy of"), record

"""Short training jobs packed into one SLURM allocation, with Snakemake's own job grouping.

A cell that the cost model expects to take less than ``pack_minutes`` joins the group
``pack<n>``: n cells of that kind run in one submission, n the fewest of ``PACK_SIZES`` whose
cells take ``pack_minutes`` or more together — so BACH's two-minute cells go 16 at a time and
CheXpert's hours-long ones alone. ``profiles/slurm`` gives each of these
groups its size (``group-components: pack<n>=<n>``) and makes ``gpu`` a per-submission
resource, so that a pack's cells share its one GPU in turn (``set-resource-scopes``); a pack
asks for the sum of its cells' time limits. Groups only exist on a cluster: a local run
ignores them. Cells of one size class may come from different datasets: each keeps its own
folder and log, and a pack cancelled midway leaves its finished cells finished and the
running one resumable, like any job.
"""

from __future__ import annotations

PACK_SIZES = (2, 4, 8, 16, 32)


def pack_size(cell_minutes: float, pack_minutes: float) -> int:
    """How many cells of ``cell_minutes`` share one allocation: the fewest of ``PACK_SIZES``
    that fill ``pack_minutes`` (at most twice that), or the largest; 1 for a cell that fills
    it alone."""
    if pack_minutes <= 0 or cell_minutes >= pack_minutes:
        return 1
    return next((n for n in PACK_SIZES if n * cell_minutes >= pack_minutes), PACK_SIZES[-1])


def pack_group(grid, wildcards) -> str | None:
    """The train rule's ``group``: ``pack<n>`` for a short cell, None for one that fills an
    allocation alone."""
    minutes = grid.cost.train(wildcards.dataset, wildcards.model, wildcards.strategy).typical_s
    n = pack_size(minutes / 60, grid.config["pack_minutes"])
    return f"pack{n}" if n > 1 else None

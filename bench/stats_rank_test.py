"""False verdicts and power of the rank test across datasets (``across.rank_test``).

Run: ``python bench/stats_rank_test.py [--families 1000] [--jobs 2]``; writes
``bench/results_stats_rank.md``. The grids are ``bench/stats_bayesian.py``'s (D datasets × 3
models, FT and 7 strategies, each strategy's true effect spreading τ points across datasets,
every cell with its own noise), through ``across.blocks`` and ``across.rank_test`` as the
report calls them. With no true difference anywhere, and with one strategy 10 points worse on
average (its own spread τ too): a Nemenyi test decides each pair on mean ranks that every
strategy shares, so one far-off strategy moves the others' ranks — the design where a post-hoc
test on mean ranks is known to mislead (Benavoli et al., JMLR 2016). A *better* or *worse* of a
strategy with no true difference is false; the worse one's *worse* is its power. Both block
views: the datasets (the default) and the (dataset, model) pairs, whose blocks share their
datasets' effects; there a verdict also needs the datasets' sign-flip test
(``across.sign_flip_p``), and the table shows Nemenyi's verdicts alone beside the
product's. And every strategy's effect skewed across datasets with mean 0 (large gains
on a few, small losses on most): what a reader of means would call no difference, which ranks
see as the typical dataset losing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from stats_bayesian import BLOCK_NAMES, Cell, grid, options, simulate
from stats_power import processes

from medft.report import across
from medft.report.verdicts import ALPHA, BETTER, WORSE
from medft.strategies import REFERENCE

HERE = Path(__file__).parent
WORSE_BY = 10.0
# The rank test's verdicts: Nemenyi's alone, and the product's (where blocks share a dataset,
# Nemenyi's where the datasets' sign-flip test agrees; the same in the datasets view).
RULES = {"Nemenyi alone": "nemenyi", "the verdict": "verdict"}
CELLS = [
    *(
        (Cell("no difference", datasets, tau, 0.0, by=by), worse_by)
        for by in across.BLOCKS
        for tau in (1.0, 4.0, 8.0)
        for worse_by in (0.0, WORSE_BY)
        for datasets in (8, 12)
    ),
    # Large gains on a few datasets, small losses on most, the mean gain 0: every strategy's
    # typical dataset loses to FT, so a *worse* here is right about ranks, wrong about means.
    *((Cell("mean 0", datasets, 8.0, 0.0, skewed=True), 0.0) for datasets in (8, 12)),
]


def one_family(task: tuple[int, int]) -> dict:
    seed, index = task
    cell, worse_by = CELLS[index]
    values = grid(np.random.default_rng(seed), cell)
    far_off = values.columns[1]
    values[far_off] -= worse_by
    table = across.rank_test(across.blocks(values, cell.by)).table.set_index("strategy")
    no_difference = list(values.columns.drop([REFERENCE, far_off] if worse_by else [REFERENCE]))
    counts = {"cell": index}
    for rule, column in RULES.items():
        false = table.loc[no_difference, column].isin([BETTER, WORSE])
        counts |= {
            f"false_any {rule}": bool(false.any()),
            f"false_share {rule}": float(false.mean()),
            f"worse_found {rule}": bool(worse_by) and table.loc[far_off, column] == WORSE,
        }
    return counts


def main() -> None:
    args = options(__doc__.splitlines()[0], HERE / "results_stats_rank.md", families=1000)
    results, minutes = simulate(one_family, len(CELLS), args, chunksize=50)
    rates = pd.DataFrame(results).groupby("cell").mean() * 100
    se = np.sqrt(ALPHA * (1 - ALPHA) / args.families) * 100
    lines = [
        "# The rank test across datasets: false verdicts and power",
        "",
        f"`python bench/stats_rank_test.py --families {args.families}` ({minutes:.1f} min on "
        f"{processes(args.jobs)}). {args.families} families per row; the grids and the model: "
        "the bench's docstring and `bench/stats_bayesian.py`'s. Blocks: the datasets (the "
        "default view) or the (dataset, model) pairs; 7 strategies and FT. False: the share of "
        "families with any *better* or *worse* of a strategy with no true difference "
        f"(Monte-Carlo standard error near 5 %: ±{se:.1f} pp; in bold where more than 2 of them "
        "above 5 %), and of those comparisons; power: the share of families where the "
        f"strategy {WORSE_BY:g} points worse is *worse*. The last two rows: every strategy's "
        "effect skewed across datasets (`bench/stats_bayesian.py`'s *mean 0*: large gains on a "
        "few, small losses on most, the mean gain 0), where a *worse* is right about the typical "
        "dataset and wrong about the mean: the share of families that read so. In the "
        "(dataset, model) view, Nemenyi's verdicts alone and the product's (Nemenyi's where "
        "the datasets' sign-flip test, Holm over the strategies, agrees); in the datasets "
        "view the two are one.",
        "",
        "| blocks | datasets | τ (pp) | one strategy worse by (pp) | rule | false, any in the "
        "family | false, per comparison | the worse one found |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, (cell, worse_by) in enumerate(CELLS):
        r = rates.loc[index]
        blocks = BLOCK_NAMES[cell.by] + (", effects skewed, mean 0" if cell.skewed else "")
        for rule in RULES if cell.by != "dataset" else ["the verdict"]:
            found = f"{r[f'worse_found {rule}']:.1f} %" if worse_by else "—"
            false_any = f"{r[f'false_any {rule}']:.1f} %"
            if not cell.skewed and r[f"false_any {rule}"] / 100 > ALPHA + 2 * se / 100:
                false_any = f"**{false_any}**"
            lines.append(
                f"| {blocks} | {cell.datasets} | {cell.tau:g} | {worse_by:g} | {rule} "
                f"| {false_any} | {r[f'false_share {rule}']:.2f} % | {found} |"
            )
    Path(args.out).write_text("\n".join([*lines, ""]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

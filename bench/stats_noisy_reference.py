"""Family-wise error when the reference (FT) is the noisy one: bench/stats_power.py's "FT
noisy 2× / 3×", the design where the verdict rule's error exceeds 5 %.

Five strategies do not move with FT's seed (LP's kind) and train more steadily than it; two
(L1-/L2-SP) move with it. Each comparison with the five then carries FT's own seed noise, so
the seven comparisons' spreads are all driven by the same three (or five, ten) FT runs: the
family's pooled spread, which ``medft.report.verdicts.paired`` uses as a floor with
(k − 1)(n − 1) degrees of freedom, is then much less certain than those degrees of freedom
say (``sphericity-corrected pool``, the candidate that gives it the degrees of freedom it
holds, is measured beside it). Null families only (δ = 0, one strategy at the margin),
through stats_power.py's ``one_family`` — the product's functions and the other rules — with
fresh random seeds.
"""

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from stats_power import HERE, SEEDS, command_line, one_family_offset, run_cells

from medft.report.verdicts import ALPHA

DESIGNS = [
    (spreads, images, False)
    for spreads in ("FT noisy 2×", "FT noisy 3×")
    for images in (None, 150, 5000)
]
# stats_power.py's families use seeds below 1e6 per cell × its cell count, stats_worst_cells
# 1e9 and above; these start at 2e9.
SEED_OFFSET = 2 * 10**9


def table(frame: pd.DataFrame, families: int) -> str:
    limit = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / families)
    rates = frame.pivot_table(
        index=["spreads", "data", "rule"], columns="seeds", values="false_any", sort=False
    )
    lines = [
        "| spreads | data | rule | " + " | ".join(f"{s} seeds" for s in rates.columns) + " |",
        "|---|---|---|" + "---|" * len(rates.columns),
    ]
    for (spreads, data, rule), row in rates.iterrows():
        cells = [
            f"**{r * 100:.1f} %**" if r > limit else f"{r * 100:.1f} %" for r in row.to_numpy()
        ]
        lines.append(f"| {spreads} | {data} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_stats_noisy_reference.md", 600)
    cells = [(seeds, design, 0.0) for design in DESIGNS for seeds in SEEDS]
    results, minutes = run_cells(partial(one_family_offset, SEED_OFFSET), cells, args, chunksize=25)
    frame = pd.DataFrame([row for family in results for row in family])
    se = np.sqrt(ALPHA * (1 - ALPHA) / args.families)
    text = [
        "# Family-wise error when FT is the noisy one",
        "",
        f"`python bench/stats_noisy_reference.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {args.jobs} processes). Null families (one strategy exactly at "
        "the margin, the rest δ = 0); FT two or three times noisier than five strategies that "
        f"do not move with it. {args.families:,} fresh families per cell, Monte-Carlo standard "
        f"error near 5 %: ±{se * 100:.2f} pp; **bold**: more than 2 standard errors above 5 % "
        f"({(ALPHA + 2 * se) * 100:.1f} %). Designs and rules: bench/stats_power.py's docstring "
        "(`paired` is the product's).",
        "",
        table(frame, args.families),
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

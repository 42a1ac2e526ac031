"""Family-wise error of the robustness verdicts in bench/stats_power.py's further spreads.

``bench/robustness_power.py`` simulates the robustness table's verdicts with the spreads
*alike* and *one noisy* in every variant. This bench adds the clean test's other designs under
the null (no strategy differs), through the same ``one_family`` — ``medft.report.post_hoc.
robustness`` on the tables the robustness job writes — with fresh random seeds: *two noisy*
and *graded* on 1,000 images, where the images' sampling weighs least against the seeds', and
*FT noisy 3×* (FT three times noisier than five strategies that do not move with it, the design
where the former pooled floor's error exceeded 5 % at 3 seeds: bench/results_stats.md) on
1,000 and 100 images and without per-image scores. One severity (4 passes), 3 and 5 seeds.

Run: ``python bench/robustness_spreads.py [--families 300] [--boot 400] [--jobs 2]``; writes
``bench/results_robustness_spreads.md``.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from robustness_power import NO_SCORES, SEEDS, one_family, pivot
from stats_power import HERE, command_line, processes, run_cells

from medft.report.verdicts import ALPHA

NOISY_REFERENCE = "FT noisy 3×"
# (spreads, images, severities, variant), as robustness_power.py's DESIGNS
DESIGNS = [
    *((spreads, 1000, 1, "") for spreads in ("two noisy", "graded", NOISY_REFERENCE)),
    (NOISY_REFERENCE, 100, 1, ""),
    (NOISY_REFERENCE, 100, 1, NO_SCORES),
]
# robustness_power.py's families use seeds below 1e6 per cell × its cell count; these start
# at 3e9 (the clean benches' offsets are 1e9 and 2e9).
SEED_OFFSET = 3 * 10**9


def one_family_offset(args) -> dict:
    seed, *rest = args
    return one_family((SEED_OFFSET + seed, *rest))


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_robustness_spreads.md", 300)
    cells = [(seeds, design, 0.0) for design in DESIGNS for seeds in SEEDS]
    families, minutes = run_cells(one_family_offset, cells, args, chunksize=10)
    null = pd.DataFrame(families)
    rates = null.groupby(["spreads", "images", "passes", "variant", "seeds"], sort=False)
    worst = rates["false_any"].mean()
    limit = ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / args.families)
    above = worst[worst > limit]
    text = [
        "# Robustness verdicts in the further spreads: family-wise error",
        "",
        f"`python bench/robustness_spreads.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {processes(args.jobs)}). {args.families:,} fresh null families "
        "per cell (no strategy differs); one family = FT + 7 strategies, each run's accuracy "
        "averaged over the corrupted passes of one evaluation set, tested by "
        "`medft.report.post_hoc.robustness`, Holm over the 7. The model: "
        "bench/robustness_power.py's docstring; the spreads: bench/stats_power.py's. "
        "Monte-Carlo standard error of a rate near 5 %: "
        f"±{np.sqrt(ALPHA * (1 - ALPHA) / args.families) * 100:.1f} pp; more than 2 above 5 % "
        f"is above {limit * 100:.1f} %.",
        "",
        (
            "**Above 5 % + 2 standard errors:** "
            + "; ".join(
                f"{s}, {i:,} images{', ' + v if v else ''}, {n} seeds: {r * 100:.1f} %"
                for (s, i, _, v, n), r in above.items()
            )
            + "."
            if len(above)
            else "**Within 5 % + 2 standard errors in every cell** "
            f"(worst {worst.max() * 100:.1f} %)."
        ),
        "",
        "### Family-wise false-positive rate under the null",
        "",
        pivot(null, "false_any"),
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Family-wise false positives when each strategy's lr is chosen on validation from the runs
the verdicts then test.

Run: ``python bench/stats_lr_choice.py [--families 400] [--boot 400] [--jobs 2]``; writes
``bench/results_stats_lr.md``. docs/protocol.md ("Statistics") quotes it.

``bench/stats_power.py`` simulates each strategy at one lr. A grid has several (the paper's:
three), and the report keeps, per strategy, the lr whose runs score best on the validation
split on average over seeds (``medft.report.tables.select_lr``), then tests those same runs'
evaluation-split scores against FT's. A run that trained luckily scores well on both splits,
so the lr chosen is partly the luckiest one, and its evaluation score is flattered: the
winner's curse. It cancels where FT and a strategy are chosen alike; it does not where a
strategy's lrs are all about as good (its luckiest of three is kept) while FT has one clearly
best lr (its choice is that lr, luck or not), or the reverse.

The model is stats_power.py's (its docstring), with three lrs per strategy: a run of
strategy j at lr l and seed s has the skill shift of j's true difference plus the lr's
offset, and training noise of which a share ``LR_SHARED`` is that of the strategy's other
lrs at the same seed (a seed fixes data order, head initialisation and the split) and the
rest the lr's own; either part shares ρ_j with FT's, as in stats_power.py. The validation
split has its own patients and images (as many as the evaluation split), scored by the same
runs. Landscapes (accuracy offset of each lr from the strategy's best, in pp):

* *FT peaked*: FT's lrs 0 / −5 / −10, every other strategy's flat (0 / 0 / 0): the others'
  choice keeps their luckiest run set, FT's keeps its one good lr — a bias towards *better*;
* *others peaked*: the reverse, a bias towards *worse*;
* *all flat*: every choice a draw of three.

Under the null (every strategy's best lr as good as FT's best) each family is tested three
times through the product's ``select_lr``, ``paired`` and ``decide``: at the lr chosen on
validation (``select_lr_on: val``, the sound protocol), at the lr chosen on the evaluation
split itself (``select_lr_on: test``, the paper-replication preset; its early stopping on the
evaluation split, which flatters further, is ``bench/stats_early_stop.py``'s: this model has no
epochs), and at
each strategy's truly best lr (no choice: what stats_power.py measures). All three come from
the same runs, so their differences are the choice's own effect. "Others peaked" is also
the probes' case: a kNN or logistic-regression probe has no lr to choose, FT has three.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from stats_power import (
    BASE_ACCURACY,
    HERE,
    IMAGES_PER_PATIENT,
    MARGIN,
    SEED_SCALE,
    SIGMA,
    SPREADS,
    K,
    bootstrap_weights,
    command_line,
    data_label,
    latent_scale,
    null_families,
    processes,
    rate_sections,
    run_noise,
    shift_for,
)

from medft.report.tables import select_lr
from medft.report.verdicts import BETTER, WORSE, decide, paired

LR_OFFSETS = {
    "FT peaked": ([0.0, -5.0, -10.0], [0.0, 0.0, 0.0]),
    "others peaked": ([0.0, 0.0, 0.0], [0.0, -5.0, -10.0]),
    "all flat": ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
}
LRS = 3
LR_SHARED = 0.5  # share of a run's training noise its strategy's other lrs have at that seed
SEEDS = (3, 5, 10)
DESIGN_COLUMNS = {"spreads": "spreads", "data": "data", "landscape": "lr landscape", "lr": "lr"}
SECTIONS = {
    "Family-wise false-positive rate (any *better*/*worse*)": "false_any",
    "Of which a false *better*": "false_better",
}
DESIGNS = [
    (spreads, images, landscape)
    for spreads in ("alike", "one noisy", "FT noisy 3×")
    for images in (5000, None)
    for landscape in LR_OFFSETS
]


def lr_noise(rng, spreads: str, seeds: int, *shape, scale: float = 1.0) -> np.ndarray:
    """Training noise (K, seeds, LRS, *shape): part shared by a strategy's lrs at one seed,
    part the lr's own, each sharing ρ_j with FT's (``run_noise``)."""
    common = run_noise(rng, spreads, seeds, 1, *shape, scale=scale)
    own = run_noise(rng, spreads, seeds, LRS, *shape, scale=scale)
    return np.sqrt(LR_SHARED) * common + np.sqrt(1 - LR_SHARED) * own


def lr_skill(rng, spreads: str, seeds: int, landscape: str) -> np.ndarray:
    """Every run's latent skill (K, seeds, LRS): the lr's offset in ``landscape`` from the
    strategy's best, plus training noise (``lr_noise``)."""
    spread, _ = SPREADS[spreads]
    ft_offsets, other_offsets = LR_OFFSETS[landscape]
    offsets = np.array([ft_offsets] + [other_offsets] * (K - 1))
    mu = latent_scale() * stats.norm.ppf(BASE_ACCURACY)
    shifts = np.vectorize(shift_for)(offsets)
    noise = lr_noise(rng, spreads, seeds)
    return mu + shifts[:, None, :] + SEED_SCALE * spread[:, None, None] * noise


def split_latent(rng, skill, spreads: str, images: int, interaction: bool):
    """One split's latent (K, seeds, LRS, images) for runs of ``skill`` (K, seeds, LRS), and
    the patient of each image: its own patients, images and run × image noise."""
    m = IMAGES_PER_PATIENT[images]
    patients = images // m
    patient_of = np.repeat(np.arange(patients), m)
    b = rng.normal(0, SIGMA["patient"], patients)[patient_of]
    c = rng.normal(0, SIGMA["image"], images)
    gamma = rng.normal(0, SIGMA["interaction"] * interaction, (K, patients))[:, patient_of]
    seeds = skill.shape[1]
    eta = lr_noise(rng, spreads, seeds, images, scale=SIGMA["run_image"])
    return b + c + gamma[:, None, None, :] + skill[..., None] + eta, patient_of


def chosen_lrs(val: np.ndarray) -> np.ndarray:
    """Each strategy's lr index as the report chooses it (``select_lr``) from one split's
    accuracy (K, seeds, LRS), passed as the validation score it reads."""
    k, seeds, lrs = val.shape
    j, s, lr = np.meshgrid(np.arange(k), np.arange(seeds), np.arange(lrs), indexing="ij")
    runs = pd.DataFrame(
        {
            "dataset": "d",
            "model": "m",
            "strategy": j.ravel(),
            "lr": lr.ravel(),
            "seed": s.ravel(),
            "main_metric": "acc",
            "val_acc": val.ravel(),
        }
    )
    kept = select_lr(runs, "val").drop_duplicates("strategy").sort_values("strategy")
    return kept["lr"].to_numpy()


def verdicts(correct, patient_of, lrs, rng, n_boot, with_predictions) -> list[str]:
    """The product's verdicts on the runs at lr index ``lrs`` (one per strategy)."""
    return kept_verdicts(correct[np.arange(K), :, lrs], patient_of, rng, n_boot, with_predictions)


def kept_verdicts(at, patient_of, rng, n_boot, with_predictions) -> list[str]:
    """The product's verdicts on the kept runs' correctness ``at`` (K, seeds, images): their
    accuracies, and with predictions the patient bootstrap of them."""
    values = at.mean(axis=2, dtype=np.float64) * 100
    boot, resolution, units = None, None, None
    if with_predictions:
        seeds, images = at.shape[1:]
        units = int(patient_of.max()) + 1
        weights = bootstrap_weights(rng, patient_of, n_boot)
        boot = (at.reshape(-1, images) @ weights.T / weights.sum(axis=1) * 100).reshape(
            K, seeds, n_boot
        )
        resolution = 100 / images
    estimate = paired(values, boot, units)
    return decide(estimate, MARGIN, resolution=resolution, advise_seeds=False).verdict


def one_family(args) -> list[dict]:
    seed, seeds, design, _, n_boot = args
    spreads, images, landscape = design
    rng = np.random.default_rng(seed)
    skill = lr_skill(rng, spreads, seeds, landscape)
    with_predictions = images is not None
    test, patient_of = split_latent(rng, skill, spreads, images or 150, with_predictions)
    val, _ = split_latent(rng, skill, spreads, images or 150, with_predictions)
    val_accuracy = (val > 0).mean(axis=3) * 100
    correct = (test > 0).astype(np.float32)
    rules = {
        "chosen on validation": chosen_lrs(val_accuracy),
        "chosen on the evaluation split": chosen_lrs(correct.mean(axis=3) * 100),
        "each at its best lr": np.zeros(K, dtype=int),  # every landscape's best lr is its first
    }
    rows = []
    for lr_rule, lrs in rules.items():
        verdict = verdicts(correct, patient_of, lrs, rng, n_boot, with_predictions)
        rows.append(
            {
                "spreads": spreads,
                "data": data_label(images),
                "landscape": landscape,
                "seeds": seeds,
                "lr": lr_rule,
                "false_any": any(v in (BETTER, WORSE) for v in verdict),
                "false_better": any(v == BETTER for v in verdict),
            }
        )
    return rows


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_stats_lr.md", families=400)
    frame, minutes, limit = null_families(one_family, DESIGNS, SEEDS, args, chunksize=20)
    rates = frame.groupby(["lr", "spreads", "data", "landscape", "seeds"])["false_any"].mean()
    worst = rates.groupby("lr").max()
    where = rates.groupby("lr").idxmax()
    first = frame["lr"].iloc[0]
    # The curse's direction: a false *better* where FT alone has one clearly best lr.
    cells = ["spreads", "data", "seeds"]
    better = frame[frame["landscape"] == "FT peaked"].groupby(["lr", *cells])["false_better"].mean()
    text = [
        "# Verdicts when each strategy's lr is chosen on validation: family-wise error",
        "",
        f"`python bench/stats_lr_choice.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {processes(args.jobs)}). {args.families:,} null families per "
        f"cell (FT and 7 strategies, {LRS} lrs each, every strategy's best lr as good as FT's), "
        "each tested at the lr the report chooses on validation, at the lr chosen on the "
        "evaluation split (the paper preset) and at each strategy's best lr; "
        "the model and landscapes: the script's docstring. Monte-Carlo standard error of a "
        f"rate near 5 %: ±{np.sqrt(0.05 * 0.95 / args.families) * 100:.1f} pp; 'within 5 %' "
        f"allows 2 of them ({limit * 100:.1f} %).",
        "",
        "| lr | worst family-wise error (design) | within 5 % |",
        "|---|---|---|",
        *(
            f"| {lr} | {worst[lr] * 100:.1f} % ({', '.join(str(x) for x in where[lr][1:])} seeds) "
            f"| {'yes' if worst[lr] <= limit else '**no**'} |"
            for lr in dict.fromkeys(frame["lr"])
        ),
        "",
        f"Means over the {len(rates[first])} cells (designs × seeds), and over the "
        "FT-peaked cells of the false *better* (the curse's direction):",
        "",
        "| lr | family-wise error | false *better*, FT peaked | its most |",
        "|---|---|---|---|",
        *(
            f"| {lr} | {rates[lr].mean() * 100:.1f} % | {better[lr].mean() * 100:.1f} % "
            f"({len(better[lr])} cells) | {better[lr].max() * 100:.1f} % |"
            for lr in dict.fromkeys(frame["lr"])
        ),
        "",
        *rate_sections(frame, DESIGN_COLUMNS, SECTIONS),
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Family-wise false positives when each run's epoch is kept by early stopping on the split the
verdicts then test (``early_stop_on: test``, the paper-replication preset).

Run: ``python bench/stats_early_stop.py [--families 400] [--boot 400] [--jobs 2]``; writes
``bench/results_stats_early_stop.md``. docs/protocol.md ("Statistics") quotes it.

Early stopping keeps each run's best epoch on the split it watches. On a plateau, which epoch
scores best on a given split is partly which images that epoch's model happened to get right
there, so the kept epoch's score on the watched split is flattered — by how much depends on how
much a strategy's predictions change from epoch to epoch (its *churn*). A strategy that trains
few parameters (LP: a head on frozen features) churns little, so its kept epoch is flattered
little; FT's much more. Stopped on a validation split, the evaluation split is untouched and
the flattery stays out of the verdicts. Stopped on the evaluation split itself, it enters them
as a difference between strategies that is the same at every seed — which more seeds make more
certain, not smaller. ``bench/stats_lr_choice.py`` simulated the lr chosen on the evaluation
split and could not simulate this: its model has no epochs.

The model is stats_power.py's (its docstring; spreads *alike*) with 50 epochs. A run's
image-level errors η_ir (variance σ²_ri) are split into a part fixed for the run and a part
that changes every epoch, an AR(1) series over epochs with lag-one correlation ``CHURN_LAG``;
both share ρ_j with FT's run of the same seed, as all of a run's noise does there (a strategy
that moves with FT seed by seed changes its predictions when FT's change). Strategy j's epoch
part has variance (c·κ_j)²·σ²_ri (c·κ_j at most 1) and the fixed part the rest, so every
strategy's accuracy at every epoch has the same distribution, and under the null (every
strategy's plateau as good as FT's) no kept epoch is better than another in truth. c
(``CHURN``) is FT's share, set so that FT's evaluation accuracy on 150 images moves by about as
much from one epoch to the next as FT's on BreastMNIST's 155 (1.57 pp,
``bench/results_early_stop.md``; this file prints the model's); κ_j is the strategy's churn
relative to FT's, by design:

* *churn alike*: every strategy FT's (the flattery cancels in expectation);
* *as on BreastMNIST*: the ratios measured there (``bench/results_early_stop.md``): LP 0.5,
  L1-SP and L2-SP 1.55 (they move with FT seed by seed, so their flattery follows FT's and
  the excess stays), the rest FT's;
* *LP steady*: LP at 0.2 of FT's, the rest FT's;
* *one churning*: Auto-RGN's place at 1.6 times FT's, the rest FT's.

Every run climbs the same learning curve, 10 pp below its plateau at epoch 0 and a third of the
way closer each epoch; early stopping is the product's (``medft.checkpoints.EarlyStopping``,
patience 5) on the accuracy of the split it watches: a validation split of its own patients and
images, as large as the evaluation split, or the evaluation split. The kept epochs' evaluation
predictions then go through the product's ``paired`` and ``decide`` (with predictions: the
patient bootstrap too; per-seed rows: the accuracies only). Both rules test the same runs, so
their difference is the stopping split's own effect. Not simulated: epoch-to-epoch changes of
the model's true skill (selecting on either split then also picks truly better epochs),
strategies whose curves differ. The lr chosen on the evaluation split as well, as the preset
does: ``bench/stats_preset_selection.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats
from stats_lr_choice import kept_verdicts
from stats_power import (
    BASE_ACCURACY,
    HERE,
    IMAGES_PER_PATIENT,
    PER_SEED_ROWS,
    SEED_SCALE,
    SIGMA,
    SPREADS,
    K,
    command_line,
    data_label,
    latent_scale,
    null_families,
    processes,
    rate_sections,
    run_noise,
    shift_for,
)

from medft.checkpoints import EarlyStopping
from medft.report.verdicts import BETTER, WORSE

EPOCHS = 50
PATIENCE = 5
RISE_PP, RISE_EPOCHS = 10.0, 1.0  # the learning curve: 10 pp short at epoch 0, e-folding 1
CHURN = 0.7  # FT's share of σ_ri that changes between epochs (calibrated: module docstring)
CHURN_LAG = 0.5  # correlation of that part between consecutive epochs
# κ_j in the paper's order (FT, LP, G-LF, G-FL, LP-FT, L1-SP, L2-SP, Auto-RGN).
CHURNS = {
    "churn alike": np.ones(K),
    "as on BreastMNIST": np.array([1.0, 0.5, 1.0, 1.0, 1.0, 1.55, 1.55, 1.0]),
    "LP steady": np.array([1.0, 0.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "one churning": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.6]),
}
# Places whose flattery the file shows: FT, LP, L2-SP, Auto-RGN.
SHOWN = {"FT": 0, "LP": 1, "L2-SP": 6, "Auto-RGN": 7}
SEEDS = (3, 5, 10)
DESIGN_COLUMNS = {"churn": "churn", "data": "data", "stop": "early stopping on"}
SECTIONS = {
    "Family-wise false-positive rate (any *better*/*worse*)": "false_any",
    "Of which a false *better*": "false_better",
    "LP's place called *worse*": "false_worse_lp",
}
DESIGNS = [(churn, images) for churn in CHURNS for images in (150, 1000, None)]
RULES = ("validation split", "evaluation split")


def churn_shares(design: str) -> np.ndarray:
    return np.minimum(CHURN * CHURNS[design], 1.0)


def split_latent(rng, skill, shares, images: int, interaction: bool, noise=None):
    """One split's latent (K, seeds, *runs, EPOCHS, images) for runs of ``skill`` (K, seeds,
    *runs), and the patient of each image: its own patients and images, every run's fixed and
    per-epoch errors on them. ``noise(rng, images)``: a unit draw of the runs' errors (K,
    seeds, *runs, images); by default ``run_noise``'s, one run per strategy and seed."""
    seeds = skill.shape[1]
    noise = noise or (lambda rng, size: run_noise(rng, "alike", seeds, size))
    m = IMAGES_PER_PATIENT[images]
    patients = images // m
    patient_of = np.repeat(np.arange(patients), m)
    b = rng.normal(0, SIGMA["patient"], patients)[patient_of]
    c = rng.normal(0, SIGMA["image"], images)
    gamma = rng.normal(0, SIGMA["interaction"] * interaction, (K, patients))[:, patient_of]
    per_strategy = (K,) + (1,) * skill.ndim  # over seeds, runs and images
    share = shares.reshape(per_strategy)
    fixed = np.sqrt(1 - share**2) * noise(rng, images)
    static = b + c + gamma.reshape(K, *per_strategy[2:], images) + skill[..., None]
    static = static + SIGMA["run_image"] * fixed
    latent = np.empty((*skill.shape, EPOCHS, images), dtype=np.float32)
    churn = noise(rng, images)
    for epoch in range(EPOCHS):
        if epoch:
            churn = CHURN_LAG * churn + np.sqrt(1 - CHURN_LAG**2) * noise(rng, images)
        curve = shift_for(-RISE_PP * np.exp(-epoch / RISE_EPOCHS))
        latent[..., epoch, :] = static + curve + SIGMA["run_image"] * share * churn
    return latent, patient_of


def kept_epochs(accuracy: np.ndarray) -> np.ndarray:
    """Each run's best epoch (K, seeds, *runs) as the product's early stopping keeps it from
    the watched split's accuracy per epoch (K, seeds, *runs, EPOCHS)."""
    kept = np.empty(accuracy.shape[:-1], dtype=int)
    for run in np.ndindex(*kept.shape):
        stopping = EarlyStopping(PATIENCE)
        for epoch, score in enumerate(accuracy[run]):
            stopping.update(score, epoch)
            if stopping.exhausted:
                break
        kept[run] = stopping.best_epoch
    return kept


def one_family(args) -> list[dict]:
    seed, seeds, design, _, n_boot = args
    churn, images = design
    rng = np.random.default_rng(seed)
    spread, _ = SPREADS["alike"]
    mu = latent_scale() * stats.norm.ppf(BASE_ACCURACY)
    skill = mu + SEED_SCALE * spread[:, None] * run_noise(rng, "alike", seeds)
    shares = churn_shares(churn)
    with_predictions = images is not None
    size = images or 150
    test, patient_of = split_latent(rng, skill, shares, size, with_predictions)
    val, _ = split_latent(rng, skill, shares, size, with_predictions)
    correct = test > 0
    test_accuracy = correct.mean(axis=3) * 100
    watched = {"validation split": (val > 0).mean(axis=3) * 100, "evaluation split": test_accuracy}
    runs = np.arange(K)[:, None], np.arange(seeds)[None, :]
    rows = []
    for stop, accuracy in watched.items():
        kept = kept_epochs(accuracy)
        at = correct[runs[0], runs[1], kept].astype(np.float32)
        verdict = kept_verdicts(at, patient_of, rng, n_boot, with_predictions)
        flattery = test_accuracy[runs[0], runs[1], kept] - test_accuracy[:, :, -1]
        rows.append(
            {
                "churn": churn,
                "data": data_label(images),
                "seeds": seeds,
                "stop": stop,
                "false_any": any(v in (BETTER, WORSE) for v in verdict),
                "false_better": any(v == BETTER for v in verdict),
                "false_worse_lp": verdict[SHOWN["LP"] - 1] == WORSE,  # of strategies 1 to K − 1
                **{f"flattery {name}": float(flattery[j].mean()) for name, j in SHOWN.items()},
                "epoch_sd_ft": float(np.diff(test_accuracy[0, :, 20:], axis=1).std() / np.sqrt(2)),
            }
        )
    return rows


def main() -> None:
    args = command_line(__doc__.splitlines()[0], HERE / "results_stats_early_stop.md", families=400)
    frame, minutes, limit = null_families(one_family, DESIGNS, SEEDS, args, chunksize=10)
    rates = frame.groupby(["stop", "churn", "data", "seeds"])["false_any"].mean()
    worst, where = rates.groupby("stop").max(), rates.groupby("stop").idxmax()
    within = rates.le(limit).groupby("stop").sum()
    scale = frame[frame["data"] == PER_SEED_ROWS].groupby("churn", sort=False)
    text = [
        "# Verdicts when the epoch is kept by early stopping on the evaluation split",
        "",
        f"`python bench/stats_early_stop.py --families {args.families} --boot {args.boot}` "
        f"({minutes:.1f} min on {processes(args.jobs)}). {args.families:,} null families per "
        "cell (FT and 7 strategies, every strategy's plateau as good as FT's; their epoch-to-"
        "epoch churn by design), each tested with every run's epoch kept by early stopping on "
        "a validation split and, from the same runs, on the evaluation split (the paper "
        "preset); the model and designs: the script's docstring. Monte-Carlo standard error of "
        f"a rate near 5 %: ±{np.sqrt(0.05 * 0.95 / args.families) * 100:.1f} pp; 'within 5 %' "
        f"allows 2 of them ({limit * 100:.1f} %).",
        "",
        "| early stopping on | worst family-wise error (design) | cells within 5 % |",
        "|---|---|---|",
        *(
            f"| {stop} | {worst[stop] * 100:.1f} % ({', '.join(str(x) for x in where[stop][1:])}"
            f" seeds) | {within[stop]} of {len(rates[stop])} |"
            for stop in RULES
        ),
        "",
        "The kept epoch's flattery: its evaluation accuracy minus the run's at the last epoch "
        "(the plateau's, in expectation), in pp, mean over runs; and FT's accuracy on 150 "
        "evaluation images, its standard deviation from one plateau epoch to the next (what "
        "CHURN is calibrated on):",
        "",
        "| churn | early stopping on | " + " | ".join(SHOWN) + " | FT's epoch-to-epoch sd |",
        "|---|---|" + "---|" * (len(SHOWN) + 1),
        *(
            f"| {churn} | {stop} | "
            + " | ".join(f"{part[f'flattery {name}'].mean():+.2f}" for name in SHOWN)
            + f" | {part['epoch_sd_ft'].mean():.2f} |"
            for churn, by_churn in scale
            for stop, part in by_churn.groupby("stop", sort=False)
        ),
        "",
        *rate_sections(frame, DESIGN_COLUMNS, SECTIONS),
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""What ``medft plan`` prints: each (dataset, model)'s GPU-hours for the whole grid, and the
budgeted search's bound beside them, from the per-job costs of ``medft.cost``; and what the
grid's seeds can decide (``seeds_note``)."""

from __future__ import annotations

from medft.cost import CostModel


def grid_seconds(cost: CostModel, dataset: str, model: str) -> tuple[float, float, int]:
    """Device seconds of one (dataset, model)'s whole grid at the epoch budget and at a
    typical early stop, and its number of jobs."""
    c = cost.grid.config
    runs_per_strategy = cost.grid.runs_per_strategy(dataset)
    jobs = [(cost.train(dataset, model, s), runs_per_strategy) for s in c["strategies"]]
    if any(cost.grid.features_file(dataset, model, s) for s in c["strategies"]):
        jobs.append((cost.features(dataset, model), 1))
    return (
        sum(j.upper_s * k for j, k in jobs),
        sum(j.typical_s * k for j, k in jobs),
        sum(k for _, k in jobs),
    )


def plan_table(cost: CostModel):
    """GPU-hours per (dataset, model): every job of the grid, at the epoch budget (upper
    bound) and at a typical early stop, as a DataFrame with a total row."""
    import pandas as pd

    c = cost.grid.config
    gpus = c["gpus_per_job"]
    rows = []
    for dataset in cost.grid.datasets:
        for model in c["models"]:
            counts, origin = cost.counts(dataset, model)
            upper_s, typical_s, n_jobs = grid_seconds(cost, dataset, model)
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "images (train/val/test)": "/".join(
                        str(counts[s]) for s in ("train", "val", "test")
                    ),
                    "counts from": origin,
                    "speed from": cost.model_source(model),
                    "jobs": n_jobs,
                    "GPU-h upper bound": upper_s * gpus / 3600,
                    "GPU-h typical": typical_s * gpus / 3600,
                }
            )
            if cost.grid.search.enabled:
                rows[-1].update(search_bound(cost, dataset, model, upper_s))
            if c.get("post_hoc"):  # inference only: the same with or without early stopping
                seconds = sum(cost.post_hoc(dataset, model, n).upper_s for n in c["post_hoc"])
                rows[-1]["post-hoc GPU-h"] = seconds * gpus / 3600
    table = pd.DataFrame(rows)
    total = {
        "dataset": "total",
        **{
            c: table[c].sum()
            for c in table.columns
            if ("jobs" in c or "GPU-h" in c) and "share" not in c
        },
    }
    if cost.grid.search.enabled and total["GPU-h upper bound"] > 0:
        share = total["search GPU-h upper bound"] / total["GPU-h upper bound"]
        total["search GPU-h share"] = f"{share:.0%}"
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True).fillna("")


def search_bound(cost: CostModel, dataset: str, model: str, grid_upper_s: float) -> dict:
    """The budgeted search's upper bound (``medft.search.rungs.planned_epochs``: no run
    stopping early, the most survivors, every epoch charged at the dearest strategy's epoch
    time), and a typical figure beside it: the same count with every run stopping at the cost
    model's typical epoch, each strategy's epochs at its own time."""
    from medft.search.rungs import planned_epochs

    c = cost.grid.config
    typical_epochs = min(c["epochs"], cost.settings.typical_epochs)

    def plan(max_epochs: int) -> dict:
        return planned_epochs(
            c["strategies"],
            len(cost.grid.lrs(dataset)),
            comparable_from(cost, model),
            cost.grid.search,
            max_epochs,
            len(c["seeds"]),
            tuple({cost.grid.first_stage(s) for s in c["strategies"]} - {None}),
            tuple(s for s in c["strategies"] if cost.grid.first_stage(s)),
        )

    upper, typical = plan(c["epochs"]), plan(typical_epochs)
    epoch_s = {s: cost.epoch_seconds(dataset, model, s) for s in c["strategies"]}
    grid_epochs = len(c["strategies"]) * cost.grid.runs_per_strategy(dataset) * c["epochs"]
    n, _ = cost.counts(dataset, model)
    speed = cost.model(model)
    per_job = cost.settings.startup_s + cost._seconds(
        n["val"] + n["test"], speed.infer_img_s, model, dataset
    )
    seconds = upper["epochs"] * max(epoch_s.values()) + upper["jobs"] * per_job
    mean_epoch_s = sum(epoch_s.values()) / len(epoch_s)
    typical_s = typical["epochs"] * mean_epoch_s + typical["jobs"] * per_job
    return {
        "search jobs": upper["jobs"],
        "search GPU-h upper bound": seconds * c["gpus_per_job"] / 3600,
        "search GPU-h typical": typical_s * c["gpus_per_job"] / 3600,
        "search GPU-h share": f"{seconds / grid_upper_s:.0%}",
        "search epochs share": f"{upper['epochs'] / grid_epochs:.0%}",
    }


def comparable_from(cost: CostModel, model: str) -> dict[str, int]:
    """Per strategy, the first epoch after which early stopping may end its run (its
    schedule has its final form; gradual unfreezing: every block trains), on ``model``."""
    from medft.architectures import block_count
    from medft.strategies import STRATEGIES

    blocks, last = block_count(model), cost.grid.config["epochs"] - 1
    options = cost.grid.strategy_options
    return {
        name: min(STRATEGIES.get(name).stoppable_from(options, blocks), last)
        for name in cost.grid.config["strategies"]
    }


SEEDS_SHOWN = (3, 5, 10)


def seeds_note(config: dict) -> str:
    """How large a difference from the reference each comparison needs before its verdict can
    be *better* or *worse* (80 % power, ``medft.report.verdicts.detectable_difference``), at
    the config's seeds and beside it: the choice of seeds is made before the grid runs."""
    import pandas as pd

    from medft.post_hoc import derived_rows
    from medft.report.verdicts import detectable_difference

    comparisons = len(config["strategies"]) - 1 + len(derived_rows(config))
    if comparisons < 1:
        return "What the seeds can decide: nothing is compared with the reference in this grid."
    chosen = [k for k in ("select_lr_on", "early_stop_on") if config.get(k, "val") == "test"]
    if chosen:
        return (
            f"What the seeds can decide: nothing. {' and '.join(f'`{k}: test`' for k in chosen)}"
            " choose the runs on the evaluation split, which flatters each strategy's score "
            "there by its own amount, so the report tests no comparison with the reference "
            '(docs/protocol.md, "Selection on the evaluation split"); it shows the means and '
            "their standard errors, as the paper did. Set both to `val` for verdicts."
        )
    ours = len(config["seeds"])
    rows = [
        {
            "seeds": f"{n} (this grid)" if n == ours else str(n),
            "difference, × the seed spread": detectable_difference(n, comparisons),
        }
        for n in sorted({*SEEDS_SHOWN, ours})
        if n >= 2
    ]
    table = pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f")
    few = "" if ours >= 2 else f" With {ours} seed, nothing is tested."
    return (
        "What the seeds can decide: each comparison with the reference is tested on its own "
        f"seed pairs (n − 1 degrees of freedom), Holm over the {comparisons} comparisons of a "
        '(dataset, model) (docs/protocol.md, "Statistics"). It is called better or worse with '
        "80 % power only for a true difference of at least:\n\n"
        f"{table}\n\nThe seed spread is the standard deviation over seeds of one strategy's "
        "score minus the reference's at the same seed: at a spread of 1 pp, the figures are "
        "points (the report's statistics table gives each pair's square, `seed_var`). The "
        "evaluation split's own sampling adds to what is needed. Smaller "
        "differences read inconclusive, with the seeds that would decide them." + few
    )

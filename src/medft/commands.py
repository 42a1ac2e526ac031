"""What each ``medft`` subcommand does with its parsed arguments (``medft.cli`` parses them).
Heavy imports stay inside each command, so ``medft --help`` and planning stay quick."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import fields

from medft.strategies import StrategyOptions


def _threads(args):
    """``--threads``: every thread pool held to it (``medft.jobs.threads_held_to``)."""
    from medft.jobs import threads_held_to

    return threads_held_to(args.threads) if args.threads else nullcontext()


def run_train(args) -> None:
    from medft.engine import TrainConfig, train

    options = StrategyOptions(**{f.name: getattr(args, f.name) for f in fields(StrategyOptions)})
    config = TrainConfig(
        # The CLI names built-in backbones only; a config's own travel through the workflow.
        **{
            f.name: getattr(args, f.name)
            for f in fields(TrainConfig)
            if f.name not in ("options", "backbone")
        },
        options=options,
    )
    with _threads(args):
        summary = train(config)
    test = summary["metrics"]["test"]
    print(
        f"{summary['dataset']} {config.model} {config.strategy} lr={config.lr:g} "
        f"seed={config.seed}: "
        f"best epoch {summary['best_epoch']}, test "
        + " ".join(f"{k}={v:.4f}" for k, v in test.items())
    )


def run_features(args) -> None:
    from medft import features

    with _threads(args):
        out = features.extract(
            args.data,
            args.model,
            args.weights,
            args.out,
            batch_size=args.batch_size,
            seed=args.seed,
            workers=args.workers,
        )
    print(f"wrote {out}")


def run_plan(args) -> None:
    from medft.cost_plan import plan_table, seeds_note
    from medft.disk import render
    from medft.workflow import Grid, load_config

    grid = Grid(load_config(args.configfile))
    table = plan_table(grid.cost)
    settings = grid.cost.settings
    print(
        table.to_markdown(index=False, floatfmt=".1f")
        + f"\n\nUpper bound: every run trains all {grid.config['epochs']} epochs; typical: "
        f"early stopping after {min(settings.typical_epochs, grid.config['epochs'])}. "
        f"GPU speed: the `cost` table of the config ({grid.config['gpus_per_job']} GPU per "
        "job). Image counts: the prepared dataset where it exists, else the source's "
        "documented counts (the paper's Table 2 for its tasks) after the entry's "
        "`train_fraction` and `max_images_per_class` (at most the cap times the classes)."
        + (
            f"\nSearch (`search:` η={grid.search.eta}, first rung of "
            f"{grid.search.first_rung_epochs} epoch(s), {grid.search.rungs} rungs): the upper "
            "bound charges every arm and finalist the dearest strategy's epoch, no arm "
            "stopping early, the most survivors, FT's full protocol and LP's full runs; "
            "`search GPU-h typical` has every run stop at the typical epoch, each strategy at "
            "its own epoch time (measured on four real grids: bench/results_search.md). "
            "`search epochs share`: its training epochs over the grid's; `search GPU-h share` "
            "adds each job's start-up, which weighs most on small datasets."
            if grid.search.enabled
            else ""
        )
        + "\n\n"
        + seeds_note(grid.config)
        + "\n\n"
        + render(grid, args.jobs)
    )


def run_status(args) -> None:
    import time

    from medft.status import render
    from medft.workflow import Grid, load_config

    grid = Grid(load_config(args.configfile))
    while True:
        text = render(grid, args.stale_minutes)
        if not args.watch:
            print(text)
            return
        print("\033[2J\033[H" + time.strftime("%H:%M:%S ") + text, flush=True)
        time.sleep(args.watch)


def run_report(args) -> None:
    from pathlib import Path

    source = Path(args.table)
    out = Path(args.out or Path("report") / source.stem)
    if source.is_dir():
        from medft.report.results_folder import grid_of, report_from_results

        if args.early_stop_on:
            raise ValueError(
                f"--early-stop-on is for a table: the runs under {source} record the split "
                "they early-stopped on"
            )

        written, missing = report_from_results(
            grid_of(source, args.configfile),
            out,
            args.select_lr_on,
            args.margin,
            args.across_blocks,
        )
        if len(missing):
            print(
                f"incomplete: {len(missing)} cell(s) without results, listed in each "
                "dataset's missing_cells:\n"
                + missing[["dataset", "model", "strategy", "lr", "seed", "state"]].to_string(
                    index=False, max_rows=20
                )
            )
    else:
        from medft.report.inputs import report_from_table

        main_metrics = {}
        for item in args.main_metric:
            dataset, sep, metric = item.partition("=")
            if not sep:
                raise ValueError(f"--main-metric {item!r}: write DATASET=METRIC")
            main_metrics[dataset] = metric
        written = report_from_table(
            source,
            out,
            main_metrics,
            args.select_lr_on or "val",
            args.margin,
            args.across_blocks or "dataset",
            args.early_stop_on or "val",
        )
    print(f"wrote {len(written)} files under {out}/; all of them on one page: {out}/report.html")


def run_prepare(args) -> None:
    from pathlib import Path

    from medft.data.preprocess import Preprocess
    from medft.data.sources import SOURCES, prepare_dataset

    option_names = {f.name for f in fields(SOURCES.get(args.source).options)}
    entry = {
        "source": args.source,
        **{
            name: value
            for name, value in vars(args).items()
            if name in option_names - {"name", "source"} and value is not None
        },
    }
    name = args.name or Path(args.out).name
    out = prepare_dataset(name, entry, Preprocess(args.resize or args.size, args.size), args.out)
    print(f"wrote {out}")


def run_list(args) -> None:
    from medft.architectures import model_names
    from medft.strategies import STRATEGIES, strategy_names
    from medft.weights import weights_names

    if args.what == "strategies":
        shares = {}
        if args.model:
            from medft.trainable import trainable_shares

            shares = trainable_shares(args.model, strategy_names())
        for name in strategy_names():
            share = f"{shares[name]:>8.2%} of {args.model}  " if shares else ""
            print(f"{name:<10} {share}{STRATEGIES.get(name).summary}")
        return
    for name in {"models": model_names, "weights": weights_names}[args.what]():
        print(name)
    if args.what == "models":
        from medft.foundation import BACKBONES

        for name in BACKBONES.names():
            spec = BACKBONES.get(name)
            print(f"{name}  ({spec.source}: {spec.id}; licence {spec.licence})")
        print("(and any timm model: timm.list_models(); your own backbones: docs/models.md)")


def run_fetch_weights(args) -> None:
    from medft.fetch import fetch_weights
    from medft.workflow import Grid, load_config

    for model, where in fetch_weights(Grid(load_config(args.configfile))):
        print(f"{model}: {where}")


def run_blocks(args) -> None:
    from medft.models import create_model
    from medft.workflow import Grid, load_config

    if args.configfile:  # its `backbones:` define more model names
        Grid(load_config(args.configfile))

    model = create_model(args.model, args.num_classes, weights="none")
    named = dict(model.module.named_parameters())
    for i, block in enumerate(model.blocks):
        count = sum(named[p].numel() for p in block.params)
        print(f"{i:2d} {block.name:<20s} {len(block.params):4d} tensors {count:>12,d} parameters")
    print(f"head: {model.head} ({', '.join(model.head_params)})")

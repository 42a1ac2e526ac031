"""``medft`` command line: train one cell, prepare data, list what is registered."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import MISSING, fields

from medft.errors import USER_ERRORS
from medft.strategies import StrategyOptions


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _add_train(sub) -> None:
    from medft.strategies import strategy_names

    p = sub.add_parser("train", help="train one (dataset, model, strategy, lr, seed) cell")
    p.add_argument("--data", required=True, help="a prepared dataset folder (medft prepare)")
    p.add_argument("--model", required=True, help="resnet50, densenet121, vgg19 or a timm name")
    p.add_argument("--weights", default="imagenet", help="see `medft list weights`")
    p.add_argument(
        "--strategy",
        required=True,
        type=str.upper,
        metavar="{" + ",".join(strategy_names()) + "}",
        choices=[s.upper() for s in strategy_names()],
    )
    p.add_argument("--lr", required=True, type=_positive_float)
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--init", help="checkpoint to start from (LP-FT: the LP run's best.pt)")
    p.add_argument(
        "--features", help="frozen-backbone features from `medft features`, for LP to share"
    )
    p.add_argument("--main-metric", help="early-stopping metric (default: the dataset's)")
    p.add_argument(
        "--early-stop-on",
        choices=["val", "test"],
        default="val",
        help="split that early-stops the run and picks its best epoch",
    )
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--workers", type=int, default=2, help="processes reading the shards")
    p.add_argument("--out", required=True)
    for f in fields(StrategyOptions):
        flag = "--" + f.name.replace("_", "-")
        kind = {"bool": _parse_bool, "float": float, "int": int, "str": str}[str(f.type)]
        p.add_argument(
            flag,
            type=kind,
            default=f.default,
            choices=f.metadata["choices"],
            help=f"{f.metadata['help']} (default: {f.default})",
        )


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_prepare(sub) -> None:
    from medft.data.sources import SOURCES

    p = sub.add_parser(
        "prepare",
        help="turn raw data into a medft dataset (shards + manifest)",
        description="Each source takes the keys of its `datasets:` entry as options.",
    )
    kinds = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name in SOURCES.names():
        source = SOURCES.get(name)
        k = kinds.add_parser(name, help=source.description, description=source.description)
        k.add_argument("--size", type=int, required=True, help="crop size of the prepared images")
        k.add_argument("--resize", type=int, help="shorter side before the crop (default: size)")
        k.add_argument("--out", required=True, help="the prepared dataset's folder")
        k.add_argument("--name", help="the dataset's name (default: the --out folder's name)")
        _add_option_flags(k, source.options)


def _add_option_flags(parser, options_class) -> None:
    """One flag per field of a source's options dataclass (``--group-column``, ...)."""
    import typing

    hints = typing.get_type_hints(options_class)
    for f in fields(options_class):
        if f.name in ("name", "source"):
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = args[0] if typing.get_origin(hint) is not list else hint
        flag = "--" + f.name.replace("_", "-")
        required = f.default is MISSING and f.default_factory is MISSING
        default = None if required or f.default is MISSING else f.default
        extra = {
            "required": required,
            "dest": f.name,
            "help": "required" if required else f"default: {default}",
        }
        if kind is str and any(typing.get_origin(a) is list for a in args):
            # A name or a list of numbers (DICOM's `window`: `lung`, or `40 400`).
            parser.add_argument(flag, nargs="+", type=_name_or_number, action=_OneOrList, **extra)
        elif typing.get_origin(kind) is list:
            item = typing.get_args(kind)[0]
            parser.add_argument(flag, nargs="+", type=item, **extra)
        elif typing.get_origin(kind) is dict:
            parser.add_argument(flag, type=json.loads, metavar="JSON", **extra)
        elif kind is bool:
            parser.add_argument(flag, type=_parse_bool, metavar="true|false", **extra)
        else:
            parser.add_argument(flag, type=kind, **extra)


def _name_or_number(token: str) -> str | float:
    try:
        return float(token)
    except ValueError:
        return token


class _OneOrList(argparse.Action):
    """One value as itself, several as a list."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values[0] if len(values) == 1 else list(values))


def _add_features(sub) -> None:
    p = sub.add_parser(
        "features", help="compute LP's frozen-backbone features once, for its runs to share"
    )
    p.add_argument("--data", required=True, help="a prepared dataset folder (medft prepare)")
    p.add_argument("--model", required=True, help="resnet50, densenet121, vgg19 or a timm name")
    p.add_argument("--weights", default="imagenet", help="see `medft list weights`")
    p.add_argument("--seed", type=int, default=0, help="matters only with --weights none")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--workers", type=int, default=2, help="processes reading the shards")
    p.add_argument("--out", required=True, help="the features file to write (.pt)")


def _add_plan(sub) -> None:
    p = sub.add_parser(
        "plan", help="GPU-hours of the workflow's grid per dataset and model, before running"
    )
    p.add_argument(
        "--configfile",
        nargs="*",
        default=[],
        help="configs layered over ./config.yaml, as `snakemake --configfile` does",
    )


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="tables, statistics and figures from a results table (per-seed rows or "
        "published means; docs/report.md)",
    )
    p.add_argument("table", help="CSV or Parquet: per-seed rows or published means")
    p.add_argument(
        "--out", help="folder for the artefacts (default: report/<the table's file name>)"
    )
    p.add_argument(
        "--main-metric",
        action="append",
        default=[],
        metavar="DATASET=METRIC",
        help="a dataset's main metric (default: the paper's, else the first listed)",
    )
    p.add_argument(
        "--select-lr-on",
        choices=["val", "test"],
        default="val",
        help="per-seed rows: the split whose mean main metric picks each strategy's lr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medft", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_prepare(sub)
    _add_features(sub)
    _add_plan(sub)
    _add_report(sub)
    lister = sub.add_parser("list", help="list registered strategies, models or weights")
    lister.add_argument("what", choices=["strategies", "models", "weights"])
    lister.add_argument(
        "--model",
        help="strategies: each one's share of this model's parameters in its final form "
        "(builds the model once per strategy: seconds)",
    )
    blocks = sub.add_parser("blocks", help="print a model's parameter blocks")
    blocks.add_argument("model")
    blocks.add_argument("--num-classes", type=int, default=2)
    return parser


def run_train(args) -> None:
    import torch

    from medft.engine import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    options = StrategyOptions(**{f.name: getattr(args, f.name) for f in fields(StrategyOptions)})
    config = TrainConfig(
        **{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "options"},
        options=options,
    )
    summary = train(config)
    test = summary["metrics"]["test"]
    print(
        f"{summary['dataset']} {config.model} {config.strategy} lr={config.lr:g} "
        f"seed={config.seed}: "
        f"best epoch {summary['best_epoch']}, test "
        + " ".join(f"{k}={v:.4f}" for k, v in test.items())
    )


def run_features(args) -> None:
    import torch

    from medft import features

    if args.threads:
        torch.set_num_threads(args.threads)
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
    from medft.cost_plan import plan_table
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
        "documented counts (the paper's Table 2 for its tasks)."
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
    )


def run_report(args) -> None:
    from pathlib import Path

    from medft.report.inputs import report_from_table

    main_metrics = {}
    for item in args.main_metric:
        dataset, sep, metric = item.partition("=")
        if not sep:
            raise ValueError(f"--main-metric {item!r}: write DATASET=METRIC")
        main_metrics[dataset] = metric
    out = Path(args.out or Path("report") / Path(args.table).stem)
    written = report_from_table(args.table, out, main_metrics, args.select_lr_on)
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
        print("(and any timm model: timm.list_models())")


def run_blocks(args) -> None:
    from medft.models import create_model

    model = create_model(args.model, args.num_classes, weights="none")
    named = dict(model.module.named_parameters())
    for i, block in enumerate(model.blocks):
        count = sum(named[p].numel() for p in block.params)
        print(f"{i:2d} {block.name:<20s} {len(block.params):4d} tensors {count:>12,d} parameters")
    print(f"head: {model.head} ({', '.join(model.head_params)})")


COMMANDS = {
    "train": run_train,
    "prepare": run_prepare,
    "features": run_features,
    "plan": run_plan,
    "report": run_report,
    "list": run_list,
    "blocks": run_blocks,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        COMMANDS[args.command](args)
    except (ValueError, *USER_ERRORS) as error:
        print(f"medft {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

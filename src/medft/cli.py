"""``medft`` command line: train one cell, prepare data, list what is registered."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import MISSING, fields

from medft import commands
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
    p.add_argument("--threads", type=int, help="CPU threads (torch, BLAS, OpenMP, Arrow)")
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
    """One flag per field of a source's options dataclass (``--group-column``, ...), with the
    field's help."""
    import types
    import typing

    hints = typing.get_type_hints(options_class)
    for f in fields(options_class):
        if f.name in ("name", "source"):
            continue
        hint = hints[f.name]
        optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = [a for a in typing.get_args(hint) if a is not type(None)] if optional else [hint]
        kind = args[0]
        flag = "--" + f.name.replace("_", "-")
        required = f.default is MISSING and f.default_factory is MISSING
        default = None if required or f.default is MISSING else f.default
        described = f.metadata["help"]  # an option whose default is None says what it means
        if required:
            described += " (required)"
        elif default is not None:
            described += f" (default: {default})"
        extra = {"required": required, "dest": f.name, "help": described}
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
    p.add_argument("--threads", type=int, help="CPU threads (torch, BLAS, OpenMP, Arrow)")
    p.add_argument("--workers", type=int, default=2, help="processes reading the shards")
    p.add_argument("--out", required=True, help="the features file to write (.pt)")


def _add_plan(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="GPU-hours and disk of the workflow's grid per dataset and model, before running",
    )
    _configfile(p)
    p.add_argument(
        "--jobs",
        type=int,
        default=100,
        help="jobs running at once, for the disk's peak (default: the SLURM profile's 100)",
    )


def _configfile(p) -> None:
    p.add_argument(
        "--configfile",
        nargs="*",
        default=[],
        help="configs layered over ./config.yaml, as `snakemake --configfile` does",
    )


def _add_status(sub) -> None:
    p = sub.add_parser(
        "status", help="how far the workflow's grid is: cells done, running, failed; hours"
    )
    _configfile(p)
    p.add_argument(
        "--stale-minutes",
        type=float,
        default=30.0,
        help="a started cell with no file written for this long is shown as stalled",
    )
    p.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS")


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="tables, statistics and figures from a run's results folder (what finished, "
        "the rest listed) or a results table (per-seed rows or published means; "
        "docs/report.md)",
    )
    p.add_argument(
        "table",
        metavar="RESULTS",
        help="a results folder (the config's `results:`), or a CSV or Parquet table of "
        "per-seed rows or published means",
    )
    p.add_argument(
        "--out",
        help="folder for the artefacts (default: report/<the folder's or table's name>)",
    )
    p.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        help="a results folder's config files, layered over config.yaml (default: the grid "
        "the workflow recorded in RESULTS/grids/)",
    )
    p.add_argument(
        "--main-metric",
        action="append",
        default=[],
        metavar="DATASET=METRIC",
        help="a table's dataset's main metric (default: the paper's, else the first listed)",
    )
    p.add_argument(
        "--select-lr-on",
        choices=["val", "test"],
        help="the split whose mean main metric picks each strategy's lr (default: the "
        "config's select_lr_on; val for a table)",
    )
    p.add_argument(
        "--early-stop-on",
        choices=["val", "test"],
        help="the split a table's runs early-stopped on; test marks their verdicts as tested "
        "on the split that kept their epochs (default val; a results folder's runs record it)",
    )
    p.add_argument(
        "--margin",
        type=float,
        help="points of the main metric within which a strategy is equivalent to FT "
        "(default: the config's equivalence_margin; 1 for a table)",
    )
    p.add_argument(
        "--across-blocks",
        choices=["dataset", "dataset_model"],
        help="what the tests across datasets count as a block (docs/protocol.md; default: "
        "the config's across_blocks; dataset for a table)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medft", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_prepare(sub)
    _add_features(sub)
    _add_plan(sub)
    _add_status(sub)
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
    _configfile(blocks)
    fetch = sub.add_parser(
        "fetch-weights",
        help="download every model's weights of a config into the local caches (on a machine "
        "with internet, before the grid runs on nodes without it; docs/models.md)",
    )
    _configfile(fetch)
    return parser


COMMANDS = {
    "train": commands.run_train,
    "prepare": commands.run_prepare,
    "features": commands.run_features,
    "plan": commands.run_plan,
    "report": commands.run_report,
    "status": commands.run_status,
    "list": commands.run_list,
    "blocks": commands.run_blocks,
    "fetch-weights": commands.run_fetch_weights,
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

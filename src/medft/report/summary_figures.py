"""The across-dataset figures: the improvement heatmap, the critical-difference diagram and
the curves along an axis (label fractions, input sizes). ``figures.save`` writes them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from medft.report.figures import VERDICT_LEGEND, VERDICT_MARKS, metric_label
from medft.report.verdicts import BETTER, WORSE
from medft.strategies import REFERENCE

LEFT_OUT_SHOWN = 3  # pairs named under the diagram's title; the CSV names them all


def improvement_heatmap(improvement: pd.DataFrame, verdicts: pd.DataFrame | None) -> plt.Figure:
    """(dataset, model) rows × strategy columns: relative improvement of the main metric over
    FT, each cell annotated with its value and verdict mark. Rows, not columns, for the
    (dataset, model) pairs: there are 24 in the paper's grid, and rows stay readable."""
    data = improvement[improvement["strategy"] != REFERENCE].copy()
    data["row"] = data["dataset"] + " · " + data["model"]
    if verdicts is not None and not verdicts.empty:
        data = data.merge(verdicts[["dataset", "model", "strategy", "verdict"]], how="left")
    else:
        data["verdict"] = ""
    data["text"] = [
        f"{v:+.1f}{VERDICT_MARKS.get(m, '')}" if np.isfinite(v) else ""
        for v, m in zip(data["improvement"], data["verdict"], strict=True)
    ]
    rows = list(dict.fromkeys(data["row"]))
    columns = list(dict.fromkeys(data["strategy"]))
    values = data.pivot(index="row", columns="strategy", values="improvement")
    values = values.reindex(index=rows, columns=columns)
    text = data.pivot(index="row", columns="strategy", values="text")
    text = text.reindex(index=rows, columns=columns).fillna("")
    limit = max(np.nanmax(np.abs(values.to_numpy())), 0.1) if values.notna().any().any() else 1
    width = 0.95 * len(columns) + 4.5
    fig, ax = plt.subplots(figsize=(width, 0.42 * len(rows) + 1.8), layout="constrained")
    sns.heatmap(
        values,
        annot=text,
        fmt="",
        cmap="RdBu",
        center=0,
        vmin=-limit,
        vmax=limit,
        cbar_kws={"label": "improvement over FT (%)"},
        ax=ax,
    )
    ax.set_xlabel("Strategy")
    ax.set_ylabel("")
    ax.tick_params(axis="y", rotation=0)
    marked = verdicts is not None and not verdicts.empty
    title = ["Relative improvement of the main metric over FT (%)"]
    title += [VERDICT_LEGEND] if marked else []
    # Wrapped to the axes (about 12 characters an inch at this size), clear of the colour bar.
    ax.set_title(
        "\n".join(textwrap.fill(line, int(12 * (width - 2.8))) for line in title), fontsize=9
    )
    return fig


def critical_difference(
    test, blocks: str, left_out: Sequence[str] = (), caveat: str = ""
) -> plt.Figure:
    """The critical-difference diagram of an ``across.RankTest`` (autorank's drawing); where
    the blocks cannot support the test, the mean ranks alone and the reason; where blocks share
    a dataset (the datasets' test decides, ``p_datasets_holm``), the mean ranks with each
    strategy's verdict and no Nemenyi bars, which would join and part strategies as if each
    block were independent. ``blocks``: what a block is (``across.BLOCKS``); ``left_out``: the
    (dataset, model) pairs some strategy has no value for, named under the title;
    ``caveat``: what the block view does to the test's error, written under the figure."""
    shown = ", ".join(left_out[:LEFT_OUT_SHOWN]) + (
        f" and {len(left_out) - LEFT_OUT_SHOWN} more" if len(left_out) > LEFT_OUT_SHOWN else ""
    )
    over = f"over {test.n_blocks} blocks: {blocks}" + (
        f"\nleft out, a strategy has no value there: {shown}" if left_out else ""
    )
    if test.result is None:
        # Every strategy's verdict is the one reason there is no test.
        reasons = test.table.loc[test.table["strategy"] != REFERENCE, "verdict"]
        title = f"No test: {reasons.iloc[0] if len(reasons) else 'nothing beside FT'}\n{over}"
        return _mean_ranks(test.table, title, caveat, with_verdicts=False)
    if test.table["p_datasets_holm"].notna().any():
        title = (
            f"Friedman p = {test.p_value:.2g} {over}\nno Nemenyi bars (they would count a "
            "dataset's blocks as independent); each strategy's verdict against FT"
        )
        return _mean_ranks(test.table, title, caveat, with_verdicts=True)
    from autorank import plot_stats

    ax = plot_stats(test.result, allow_insignificant=True)
    ax.set_title(f"Friedman p = {test.p_value:.2g}, Nemenyi CD = {test.cd:.2f}\n{over}", fontsize=9)
    _caveat_under(ax, caveat, -0.02)
    return ax.figure


VERDICT_COLOURS = {BETTER: "forestgreen", WORSE: "firebrick"}


def _mean_ranks(table: pd.DataFrame, title: str, caveat: str, with_verdicts: bool) -> plt.Figure:
    """Each strategy's mean rank as a dot, best at the top; ``with_verdicts``: its verdict
    against FT in a column right of the axes, coloured where it is better or worse."""
    table = table.sort_values("mean_rank")
    width = 9.5 if with_verdicts else 6.5
    fig, ax = plt.subplots(figsize=(width, 0.35 * len(table) + 2.6), layout="constrained")
    colours = [
        VERDICT_COLOURS.get(v, "black") if with_verdicts else "black" for v in table["verdict"]
    ]
    ax.scatter(table["mean_rank"], table["strategy"], color=colours)
    ax.set_xlim(0.5, len(table) + 0.5)
    if with_verdicts:
        for strategy, verdict, colour in zip(
            table["strategy"], table["verdict"], colours, strict=True
        ):
            ax.text(
                1.02,
                strategy,
                verdict,
                transform=ax.get_yaxis_transform(),
                va="center",
                fontsize=7.5,
                color=colour,
            )
    ax.invert_yaxis()
    ax.set_xlabel("mean rank across the blocks (1 = best)")
    ax.set_title(title, fontsize=9)
    _caveat_under(ax, caveat, -0.22)
    return fig


def _caveat_under(ax: plt.Axes, caveat: str, y: float) -> None:
    if caveat:
        ax.text(
            0.5,
            y,
            textwrap.fill(caveat, 95),
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=7.5,
            color="firebrick",
        )


def along_axis(curves: pd.DataFrame, axis: str) -> plt.Figure:
    """Per (dataset, model): each strategy's main metric (mean, 95 % interval over seeds)
    against ``axis`` ("fraction" or "size"), log-scaled; FT drawn black."""
    from medft.report.axes import AXES

    panels = list(curves.groupby(["dataset", "model"], sort=False))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, layout="constrained"
    )
    for ax, ((dataset, model), part) in zip(axes.flat, panels, strict=True):
        for strategy, line in part.groupby("strategy", sort=False):
            line = line.sort_values(axis)
            style = {"color": "black", "lw": 2.2} if strategy == REFERENCE else {"lw": 1.2}
            ax.plot(line["fraction"], line["mean"], marker="o", ms=3, label=strategy, **style)
            ax.fill_between(
                line["fraction"],
                line["low"],
                line["high"],
                alpha=0.12,
                **({"color": "black"} if strategy == REFERENCE else {}),
            )
        ax.set_xscale("log")
        ax.set_xlabel(AXES[axis])
        ax.set_ylabel(metric_label(part["main_metric"].iloc[0]))
        ax.set_title(f"{dataset} · {model}", fontsize=9)
        ax.grid(alpha=0.3)
    axes.flat[-1].legend(fontsize=7, loc="lower right")
    return fig

"""The report's figures, with matplotlib, seaborn and pandas plotting.

Each function returns a Figure; ``save`` writes it as PNG (for the HTML report) and PDF (for
papers).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from medft.report.tables import METRIC_LABELS  # noqa: E402
from medft.report.verdicts import BETTER, EQUIVALENT, WORSE  # noqa: E402
from medft.strategies import REFERENCE  # noqa: E402

VERDICT_MARKS = {BETTER: "▲", WORSE: "▼", EQUIVALENT: "≈"}
VERDICT_LEGEND = (
    "▲ / ▼: better / worse than FT; ≈: equivalent within the margin (docs/protocol.md, Statistics)"
)


def save(figure: plt.Figure, *paths: str | Path) -> None:
    """Write ``figure`` to each path (the format from the extension), titles and legends
    outside the axes included."""
    for path in paths:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _integer_epochs(axes) -> None:
    for ax in np.ravel(axes):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def relative_improvement(
    improvement: pd.DataFrame, title: str, verdicts: pd.DataFrame | None = None
) -> plt.Figure:
    """Figures 6–11: bars of relative improvement of the main metric over FT, one group per
    strategy, one bar per model, error bars = SE over seeds, verdict marks above the bars."""
    data = improvement[improvement["strategy"] != REFERENCE]
    strategies = list(dict.fromkeys(data["strategy"]))
    models = list(dict.fromkeys(data["model"]))
    bars = data.pivot(index="strategy", columns="model", values="improvement")
    errors = data.pivot(index="strategy", columns="model", values="improvement_se")
    bars, errors = bars.reindex(strategies)[models], errors.reindex(strategies)[models]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    has_errors = errors.notna().any().any()
    bars.plot.bar(yerr=errors.fillna(0) if has_errors else None, ax=ax, capsize=3, rot=0, width=0.8)
    ax.axhline(0, color="black", linewidth=0.8)
    if verdicts is not None and not verdicts.empty:
        verdict_of = verdicts.set_index(["model", "strategy"])["verdict"]
        bar_groups = [c for c in ax.containers if isinstance(c, BarContainer)]
        for container, model in zip(bar_groups, models, strict=True):
            for patch, strategy in zip(container.patches, strategies, strict=True):
                mark = VERDICT_MARKS.get(verdict_of.get((model, strategy)), "")
                height = patch.get_height()
                if mark and np.isfinite(height):
                    # beyond the end of the error bar, on the bar's side of zero
                    reach = np.nan_to_num(errors.loc[strategy, model])
                    end = height + reach if height >= 0 else height - reach
                    ax.annotate(
                        mark,
                        (patch.get_x() + patch.get_width() / 2, end),
                        xytext=(0, 4 if height >= 0 else -12),
                        textcoords="offset points",
                        ha="center",
                        fontsize=9,
                    )
        ax.text(0, -0.16, VERDICT_LEGEND, transform=ax.transAxes, fontsize=8)
    metric = metric_label(data["metric"].iloc[0]) if len(data) else ""
    ax.set_xlabel("Fine-tuning strategy")
    ax.set_ylabel(f"{metric}: improvement over FT (%)")
    ax.set_title(title)
    ax.legend(title="Model", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.12)  # room for the verdict marks
    return fig


def learning_curves(epochs: pd.DataFrame, main_metric: str, split: str) -> plt.Figure:
    """Per strategy (rows) and model (column pairs): training and ``split`` loss, and the
    ``split`` main metric, per epoch; one line per seed."""
    strategies = list(dict.fromkeys(epochs["strategy"]))
    models = list(dict.fromkeys(epochs["model"]))
    fig, axes = plt.subplots(
        len(strategies),
        2 * len(models),
        figsize=(3.2 * 2 * len(models), 2.1 * len(strategies)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    palette = sns.color_palette(n_colors=max(int(epochs["seed"].nunique()), 1))
    seeds = sorted(epochs["seed"].unique())
    for r, strategy in enumerate(strategies):
        for c, model in enumerate(models):
            runs = epochs[(epochs["strategy"] == strategy) & (epochs["model"] == model)]
            loss_ax, metric_ax = axes[r, 2 * c], axes[r, 2 * c + 1]
            for seed, run in runs.groupby("seed"):
                color = palette[seeds.index(seed)]
                loss_ax.plot(run["epoch"], run["train_loss"], color=color, label=f"seed {seed}")
                if f"{split}_loss" in run:
                    loss_ax.plot(run["epoch"], run[f"{split}_loss"], color=color, ls="--")
                if f"{split}_{main_metric}" in run:
                    metric_ax.plot(run["epoch"], run[f"{split}_{main_metric}"], color=color)
            loss_ax.set_title(f"{strategy} · {model}: loss", fontsize=9)
            metric_ax.set_title(
                f"{strategy} · {model}: {split} {metric_label(main_metric)}", fontsize=9
            )
            for ax in (loss_ax, metric_ax):
                ax.tick_params(labelsize=7)
                ax.grid(alpha=0.3)
            if r == len(strategies) - 1:
                loss_ax.set_xlabel("epoch")
                metric_ax.set_xlabel("epoch")
    _integer_epochs(axes)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", ls="--"))
    labels.append(f"{split} loss (dashed)")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    return fig


def lr_sensitivity(runs: pd.DataFrame, main_metric: str, select_on: str) -> plt.Figure:
    """Main metric against lr, per strategy and model: the selection split (solid) and the
    evaluation split (dashed), mean ± SE over seeds."""
    long = runs.melt(
        id_vars=["model", "strategy", "lr", "seed"],
        value_vars=[f"{select_on}_{main_metric}", f"test_{main_metric}"],
        var_name="split",
        value_name="value",
    )
    long["split"] = long["split"].str.split("_").str[0]
    long["value"] *= 100
    grid = sns.relplot(
        data=long,
        x="lr",
        y="value",
        hue="strategy",
        style="split",
        col="model",
        kind="line",
        markers=True,
        errorbar="se",
        err_style="bars",
        height=4.5,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    lrs = sorted(runs["lr"].unique())
    grid.set(xscale="log", xticks=lrs, xticklabels=[f"{lr:g}" for lr in lrs])
    for ax in grid.axes.flat:
        ax.minorticks_off()
    grid.set_axis_labels("learning rate", f"{metric_label(main_metric)} (%)")
    grid.figure.suptitle(
        f"lr sensitivity: {select_on} (selection) and test {metric_label(main_metric)}", y=1.02
    )
    return grid.figure


def per_class(frame: pd.DataFrame) -> plt.Figure:
    """Per-class recall and F1 on the evaluation split (mean over seeds): rows model ·
    strategy, columns classes."""
    frame = frame.assign(row=frame["model"] + " · " + frame["strategy"])
    rows = list(dict.fromkeys(frame["row"]))
    classes = list(dict.fromkeys(frame["class"]))
    fig, axes = plt.subplots(
        1,
        2,
        figsize=(2 * (1.2 * len(classes) + 2.5), 0.35 * len(rows) + 1.8),
        layout="constrained",
    )
    for ax, measure in zip(axes, ("recall", "f1"), strict=True):
        values = frame.pivot(index="row", columns="class", values=measure).reindex(
            index=rows, columns=classes
        )
        sns.heatmap(
            values * 100,
            annot=True,
            fmt=".0f",
            vmin=0,
            vmax=100,
            cmap="viridis",
            cbar=ax is axes[-1],
            ax=ax,
        )
        ax.set_title(f"per-class {'F1' if measure == 'f1' else measure} (%)")
        ax.set_xlabel("")
        ax.set_ylabel("")
        if ax is not axes[0]:
            ax.set_yticklabels([])
    return fig


def block_learning_rates(epochs: pd.DataFrame, column: str = "model") -> plt.Figure:
    """Strategies that set each block's lr (Auto-RGN): the lr of each parameter block per
    epoch, mean over seeds; one panel per strategy and ``column`` (a model, or a dataset)."""
    blocks = [c for c in epochs.columns if c.startswith("lr_") and epochs[c].notna().any()]
    long = epochs.melt(
        id_vars=["strategy", column, "epoch"],
        value_vars=blocks,
        var_name="block",
        value_name="block_lr",
    ).dropna(subset=["block_lr"])
    long = long[long["block_lr"] > 0]  # a frozen block (there are none in Auto-RGN) has lr 0
    long["block"] = long["block"].str.removeprefix("lr_")
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="block_lr",
        hue="block",
        col=column,
        row="strategy",
        kind="line",
        errorbar=None,
        marker="o",
        height=3.6,
        aspect=1.3,
        facet_kws={"sharey": False},
    )
    grid.set(yscale="log")
    grid.set_titles("{row_name} | {col_name}")
    _integer_epochs(grid.axes)
    grid.set_axis_labels("epoch", "block learning rate")
    grid.figure.suptitle("Per-block learning rate (Auto-RGN: lr × relative gradient norm)", y=1.02)
    return grid.figure


def search_curves(
    curves: pd.DataFrame, decisions: list[pd.DataFrame], budgets: list[int], title: str
) -> plt.Figure:
    """Every arm's validation main metric by epochs trained (seed 0), one line per (strategy,
    lr), with each rung's cut: where the arms that stopped there were left behind."""
    metric = curves["main_metric"].iloc[0]
    figure, ax = plt.subplots(figsize=(9, 5))
    sns.lineplot(
        data=curves.assign(epochs=curves["epoch"] + 1),
        x="epochs",
        y="score",
        hue="strategy",
        style="lr",
        markers=True,
        dashes=True,
        estimator=None,
        ax=ax,
    )
    bottom = ax.get_ylim()[0]
    for k, (budget, decision) in enumerate(zip(budgets, decisions, strict=True)):
        ax.axvline(budget, color="grey", linestyle=":", linewidth=1)
        ax.text(
            budget,
            bottom,
            f" rung {k + 1} cut: {int(decision['survives'].sum())} of {len(decision)} go on",
            rotation=90,
            va="bottom",
            ha="right",
            fontsize=8,
            color="dimgrey",
        )
    ax.set(
        xlabel="epochs trained (seed 0)",
        ylabel=f"validation {metric_label(metric)} (%)",
        title=f"{title}: every arm of the search",
    )
    _integer_epochs(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return figure


def reliability_diagrams(bins: pd.DataFrame) -> plt.Figure:
    """One panel per (model, strategy): accuracy against mean confidence per confidence bin
    (evaluation split, seeds pooled, before temperature scaling), the diagonal perfect."""
    panels = list(bins.groupby(["model", "strategy"], sort=False))
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False, layout="constrained"
    )
    for ax, ((model, strategy), part) in zip(axes.flat, panels, strict=False):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        centres = (part["bin"] + 0.5) / 15
        ax.bar(centres, part["accuracy"], width=1 / 15, alpha=0.7, edgecolor="k", lw=0.3)
        ax.plot(part["confidence"], part["accuracy"], "o", color="C3", ms=2.5)  # bin's mean
        ax.set_title(f"{strategy} · {model}", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel("confidence (top label)", fontsize=8)
    fig.supylabel("accuracy", fontsize=8)
    return fig

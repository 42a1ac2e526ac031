"""Figures of the post-hoc evaluations: the main metric against corruption severity, and
along the WiSE interpolation. ``figures.save`` writes them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from medft.report.figures import metric_label
from medft.strategies import REFERENCE


def severity_curves(curves: pd.DataFrame, main_metric: str) -> plt.Figure:
    """One row of panels per model, one panel per corruption: each strategy's main metric
    (mean over seeds) against severity; FT drawn black."""
    models = list(dict.fromkeys(curves["model"]))
    corruptions = list(dict.fromkeys(curves["corruption"]))
    fig, axes = plt.subplots(
        len(models),
        len(corruptions),
        figsize=(3.2 * len(corruptions), 2.9 * len(models)),
        squeeze=False,
        sharey="row",
        layout="constrained",
    )
    for i, model in enumerate(models):
        for j, corruption in enumerate(corruptions):
            ax = axes[i, j]
            part = curves[(curves["model"] == model) & (curves["corruption"] == corruption)]
            for strategy, line in part.groupby("strategy", sort=False):
                style = {"color": "black", "lw": 2.2} if strategy == REFERENCE else {"lw": 1}
                ax.plot(
                    line["severity"],
                    line["value"] * 100,
                    marker="o",
                    ms=2.5,
                    label=strategy,
                    **style,
                )
            ax.set_title(f"{corruption} · {model}", fontsize=8)
            ax.set_xlabel("severity (0: clean)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel(f"{metric_label(main_metric)} (%)", fontsize=8)
    axes[0, -1].legend(fontsize=6, loc="lower left")
    return fig


def wise_curves(curve: pd.DataFrame, main_metric: str) -> plt.Figure:
    """Per derived row (WiSE(LP, FT), …) at its chosen lr: the main metric against α on the
    selection and evaluation splits, each seed thin, their mean thick; α = 0 is LP's
    solution, α = 1 the other end's."""
    rows = list(dict.fromkeys(curve["row"]))
    fig, axes = plt.subplots(
        1, len(rows), figsize=(4.6 * len(rows), 3.6), squeeze=False, layout="constrained"
    )
    for ax, row in zip(axes.flat, rows, strict=True):
        part = curve[curve["row"] == row]
        for k, (split, lines) in enumerate(part.groupby("split", sort=True)):
            for _, seed_line in lines.groupby("seed"):
                ax.plot(
                    seed_line["alpha"], seed_line["value"] * 100, color=f"C{k}", lw=0.6, alpha=0.4
                )
            mean = lines.groupby("alpha")["value"].mean() * 100
            ax.plot(mean.index, mean.values, color=f"C{k}", lw=2, marker="o", ms=3, label=split)
        ax.set_title(f"{row}, lr {part['lr'].iloc[0]:g}", fontsize=9)
        ax.set_xlabel("α (0: LP's weights, 1: the fine-tuned end's)")
        ax.set_ylabel(f"{metric_label(main_metric)} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig

"""The search's answer for one (dataset, model): which (strategy, lr) to use, and how sure.

The finalists (the last decision's survivors) and FT's arms have every seed at the full
protocol. The recommendation is the one with the best mean main metric on the selection split
(the grid's rule for choosing an lr); it is then tested against FT's arm chosen by the same
rule (the FT the grid would choose) and against the runner-up on the evaluation split with the
report's statistics: seed-paired t-test and patient-level bootstrap, Holm-corrected over the two
comparisons (docs/protocol.md, Statistics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medft.report import stats
from medft.report.tables import METRIC_LABELS, mean_se
from medft.report.verdict_table import verdict_text
from medft.report.verdicts import EQUIVALENT
from medft.search.rungs import REFERENCE
from medft.workflow import lr_tag

RECOMMENDED, RUNNER_UP = "recommended", "runner-up"


def arm_label(strategy: str, lr) -> str:
    return f"{strategy} lr={lr}"


def _lr_tags(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with lrs as the workflow's folder tags (``1e-05``), as the decisions hold them."""
    return runs.assign(lr=runs["lr"].map(lambda lr: lr_tag(float(lr))))


def with_reference(runs: pd.DataFrame, finalists: pd.DataFrame) -> pd.DataFrame:
    """The finalists and every FT arm of ``runs`` (FT runs the full protocol: its arm the
    grid's rule chooses is the reference of "better / worse than FT")."""
    ft = sorted(set(_lr_tags(runs[runs["strategy"] == REFERENCE])["lr"]))
    extra = pd.DataFrame(
        [{"strategy": REFERENCE, "lr": lr, "role": "FT, full protocol"} for lr in ft],
        columns=["strategy", "lr", "role"],
    )
    return pd.concat([finalists, extra], ignore_index=True).drop_duplicates(["strategy", "lr"])


def finalist_table(runs: pd.DataFrame, finalists: pd.DataFrame, select_on: str) -> pd.DataFrame:
    """One row per finalist arm, best first: seeds, the selection split's mean main metric,
    the evaluation split's mean and SE (percent), and its role."""
    runs = _lr_tags(runs)
    rows = []
    for arm in finalists.itertuples():
        mine = runs[(runs["strategy"] == arm.strategy) & (runs["lr"] == arm.lr)]
        metric = mine["main_metric"].iloc[0]
        test = mine[f"test_{metric}"] * 100
        rows.append(
            {
                "strategy": arm.strategy,
                "lr": arm.lr,
                "finalist as": arm.role,
                "n_seeds": len(mine),
                "main_metric": metric,
                "select_mean": mine[f"{select_on}_{metric}"].mean() * 100,
                "test_mean": test.mean(),
                "test_se": test.sem() if len(test) > 1 else np.nan,
            }
        )
    table = pd.DataFrame(rows).sort_values("select_mean", ascending=False, kind="stable")
    table.insert(0, "rank", range(1, len(table) + 1))
    table["role"] = ""
    table.iloc[0, table.columns.get_loc("role")] = RECOMMENDED
    if len(table) > 1:
        table.iloc[1, table.columns.get_loc("role")] = RUNNER_UP
    return table.reset_index(drop=True)


def compare(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    tasks: dict[str, str],
    n_boot: int = stats.N_BOOT,
    margin: float | None = None,
    family: int | None = None,
    select_on: str = "val",
) -> pd.DataFrame:
    """The recommendation against FT's best finalist and against the runner-up: per
    comparison, the seed-paired difference (recommended − other, percentage points), the
    patient bootstrap, and the report's combined test with Holm over the comparisons and its
    four verdicts (``medft.report.verdicts``; equivalent within ±``margin`` pp, default
    ``stats.EQUIVALENCE_MARGIN``). ``family``: the grid's comparisons with FT (its strategies
    but FT); the search's verdicts then carry the grid's multiplicity, so that it claims
    *better* or *worse* only where the grid's own statistics could; and nothing where the
    evaluation split chose the arms or their epochs (``select_on``, ``stats.verdicts``)."""
    runs = _lr_tags(runs)
    runs["strategy"] = [
        arm_label(s, lr) for s, lr in zip(runs["strategy"], runs["lr"], strict=True)
    ]
    best = table.iloc[0]
    winner = arm_label(best["strategy"], best["lr"])
    others = {}
    ft = table[(table["strategy"] == REFERENCE) & (table["rank"] > 1)]
    if best["strategy"] != REFERENCE and len(ft):
        others[f"against {REFERENCE}"] = arm_label(ft["strategy"].iloc[0], ft["lr"].iloc[0])
    if len(table) > 1:
        others.setdefault(
            "against the runner-up", arm_label(table["strategy"].iloc[1], table["lr"].iloc[1])
        )
        if others.get(f"against {REFERENCE}") == others["against the runner-up"]:
            del others["against the runner-up"]  # FT is the runner-up: one comparison
    rows = []
    for against, other in others.items():
        pair = runs[runs["strategy"].isin([winner, other])]
        tested = stats.paired_tests(pair, reference=other)
        boot = stats.bootstrap_intervals(pair, tasks, n_boot=n_boot, reference=other)
        row = {"comparison": against, "other": other, **tested.iloc[0].to_dict()}
        row.update(
            boot.iloc[0].to_dict() if len(boot) else dict.fromkeys(stats.BOOT_COLUMNS, np.nan)
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    # One family (one dataset and model): the comparisons share the recommended arm, so Holm
    # runs over them, at the grid's size where that is larger.
    margin = stats.EQUIVALENCE_MARGIN if margin is None else margin
    frame = stats.verdicts(
        frame,
        margin=margin,
        family=family,
        chosen_on_evaluation=stats.chosen_on_evaluation(select_on, runs),
    )
    return frame.drop(columns=["strategy"]).rename(columns={"other": "against_arm"})


def search_cost(
    logs: pd.DataFrame,
    n_train: int,
    epoch_s: dict[str, float],
    head_only: list[str] = (),
    n_images: int = 0,
) -> dict:
    """What the search trained: epochs, training image-passes through the backbone (epochs ×
    training images; a head on shared features passes none, its features job each image
    once), hours measured, and hours on the cost model's reference GPU (``epoch_s``)."""
    epochs = logs.groupby("strategy").size()
    backbone = int(logs["strategy"].isin(list(head_only)).eq(False).sum())
    shared = bool(set(head_only) & set(epochs.index))
    return {
        "epochs": int(len(logs)),
        "image_passes": backbone * n_train + (n_images if shared else 0),
        "hours_measured": float(logs["seconds"].sum() / 3600) if "seconds" in logs else 0.0,
        "hours_model": float(sum(n * epoch_s.get(s, 0.0) for s, n in epochs.items())) / 3600,
    }


def seed0_curves(logs: pd.DataFrame, metric: str, split: str) -> pd.DataFrame:
    """Each arm's seed-0 validation curve (percent): strategy, lr, epoch, score."""
    first = logs[logs["seed"] == logs["seed"].min()]
    return pd.DataFrame(
        {
            "strategy": first["strategy"],
            "lr": first["lr"].astype(str),
            "epoch": first["epoch"],
            "score": first[f"{split}_{metric}"] * 100,
            "main_metric": metric,
        }
    )


def duration(hours: float) -> str:
    """Hours as people read them: "3.2 h", "14 min", "9 s"."""
    if hours >= 1:
        return f"{hours:.1f} h"
    if hours * 60 >= 1:
        return f"{hours * 60:.0f} min"
    return f"{hours * 3600:.0f} s"


def _verdict_sentence(row: pd.Series, metric: str) -> str:
    equivalence = (
        f", equivalence interval [{row['eq_low']:+.2f}, {row['eq_high']:+.2f}] "
        f"within ±{row['margin']:g} pp"
        if row["verdict"] == EQUIVALENT
        else ""
    )
    # An untested comparison has no interval or p to show.
    tested = (
        ""
        if pd.isna(row["p_value"])
        else f", 95 % interval [{row['low']:+.2f}, {row['high']:+.2f}] (seeds and patients), "
        f"p = {row['p_value']:.3g}, Holm p = {row['p_holm']:.3g}"
    )
    return (
        f"- **{verdict_text(row['verdict'], row['seeds_to_decide'], row.get('reason', ''))}** "
        f"{row['comparison']} "
        f"({row['against_arm']}): {row['diff_mean']:+.2f} pp {METRIC_LABELS.get(metric, metric)} "
        f"over {int(row['n_pairs'])} seed pairs{tested}{equivalence}"
    )


def markdown(
    title: str,
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    decisions: list[pd.DataFrame],
    budgets: list[int],
    cost: dict,
    figure: str,
) -> str:
    best = table.iloc[0]
    metric = best["main_metric"]
    label = METRIC_LABELS.get(metric, metric)
    lines = [
        f"# Recommendation: {title}",
        "",
        f"**Use {best['strategy']} at lr {best['lr']}**: test {label} "
        f"{mean_se(best['test_mean'], best['test_se'])} over {best['n_seeds']} seeds "
        f"(chosen on the best mean validation {label}, "
        f"{best['select_mean']:.2f}).",
        "",
    ]
    if comparisons.empty:
        lines.append("- The search had a single finalist: nothing to compare it with.")
    else:
        lines += [_verdict_sentence(row, metric) for _, row in comparisons.iterrows()]
    lines += [
        "",
        "*better* / *worse*: Holm-corrected p < 0.05 (docs/protocol.md, Statistics). "
        "*Equivalent*: the equivalence interval lies within the equivalence margin, so either "
        "is a sound choice. *Inconclusive*: these seeds cannot tell the two apart, which is "
        "not equivalence: the interval says how large a difference is still possible.",
        "",
        "## Finalists (every seed, full protocol)",
        "",
        table.assign(
            select_mean=table["select_mean"].map("{:.2f}".format),
            test=[mean_se(m, s) for m, s in zip(table["test_mean"], table["test_se"], strict=True)],
        )[["rank", "strategy", "lr", "role", "finalist as", "n_seeds", "select_mean", "test"]]
        .rename(columns={"select_mean": f"val {label}", "test": f"test {label}"})
        .to_markdown(index=False, disable_numparse=True),
        "",
        "## Rungs",
        "",
    ]
    for k, (decision, budget) in enumerate(zip(decisions, budgets, strict=True)):
        kept = decision[decision["survives"]]
        lines.append(
            f"- Rung {k + 1} (seed 0, epoch budget {budget}): {len(kept)} of {len(decision)} "
            "arms go on: "
            + ", ".join(
                arm_label(s, lr) for s, lr in zip(kept["strategy"], kept["lr"], strict=True)
            )
        )
    lines += [
        "",
        f"![Every arm's validation curve, rung cuts marked]({figure})",
        "",
        "## Cost",
        "",
        f"- This search: {cost['epochs']} epochs, {cost['image_passes']:,} training "
        "image-passes through the backbone, "
        f"{duration(cost['hours_measured'])} of training measured here; "
        f"{duration(cost['hours_model'])} of training epochs on the cost model's reference GPU.",
        f"- The full grid's training epochs on that GPU (`medft plan`'s model): "
        f"{duration(cost['grid_hours_typical'])} at a typical early stop, "
        f"{duration(cost['grid_hours_upper'])} at the epoch budget.",
    ]
    return "\n".join(lines) + "\n"


def write(
    out_md: str | Path,
    out_csv: str | Path,
    out_png: str | Path,
    title: str,
    table: pd.DataFrame,
    comparisons: pd.DataFrame,
    decisions: list[pd.DataFrame],
    budgets: list[int],
    curves: pd.DataFrame,
    cost: dict,
) -> None:
    from medft.report.figures import save, search_curves

    frame = table.assign(
        arm=[arm_label(s, lr) for s, lr in zip(table["strategy"], table["lr"], strict=True)]
    )
    if not comparisons.empty:
        tested = comparisons.drop(columns=["dataset", "model"]).rename(
            columns={"against_arm": "arm"}
        )
        frame = frame.merge(tested, on="arm", how="left")
    frame.to_csv(out_csv, index=False, float_format="%.4f")
    save(search_curves(curves, decisions, budgets, title), out_png)
    Path(out_md).write_text(
        markdown(title, table, comparisons, decisions, budgets, cost, Path(out_png).name)
    )

"""The statistics table for reading: each verdict first, then what it rests on."""

from __future__ import annotations

import pandas as pd

from medft.report.tables import NO_VALUE


def _interval(low: float, high: float) -> str:
    return NO_VALUE if pd.isna(low) else f"[{low:.2f}, {high:.2f}]"


def _p(value: float) -> str:
    return NO_VALUE if pd.isna(value) else f"{value:.4f}"


def statistics_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per model × strategy, for reading: the verdict first, then what it rests on."""
    return pd.DataFrame(
        {
            "model": verdicts["model"],
            "strategy": verdicts["strategy"],
            "verdict": [
                verdict_text(v, n, r)
                for v, n, r in zip(
                    verdicts["verdict"],
                    verdicts["seeds_to_decide"],
                    verdicts.get("reason", pd.Series("", index=verdicts.index)),
                    strict=True,
                )
            ],
            "difference (pp)": verdicts["diff_mean"].map(
                lambda d: NO_VALUE if pd.isna(d) else f"{d:+.2f}"
            ),
            "95 % interval": [
                _interval(lo, hi) for lo, hi in zip(verdicts["low"], verdicts["high"], strict=True)
            ],
            "p (Holm)": verdicts["p_holm"].map(_p),
            "equivalence interval": [
                _interval(lo, hi)
                for lo, hi in zip(verdicts["eq_low"], verdicts["eq_high"], strict=True)
            ],
            "seeds (t-interval)": [
                _interval(lo, hi)
                for lo, hi in zip(verdicts["diff_low"], verdicts["diff_high"], strict=True)
            ],
            "patients (bootstrap)": [
                _interval(lo, hi)
                for lo, hi in zip(verdicts["boot_low"], verdicts["boot_high"], strict=True)
            ],
            "seeds": verdicts["n_pairs"],
        }
    )


def verdict_text(verdict: str, seeds_to_decide: float, reason: str = "") -> str:
    """A verdict with why it is not tested, or for inconclusive what would decide it."""
    from medft.report.verdicts import INCONCLUSIVE, MAX_SEEDS

    reason = "" if pd.isna(reason) else str(reason)
    if verdict != INCONCLUSIVE:
        return f"{verdict} ({reason})" if reason else verdict
    if not pd.isna(seeds_to_decide):
        decides = f"~{int(seeds_to_decide)} seeds would decide"
    elif reason:
        decides = f"over {MAX_SEEDS} seeds: no number of seeds decides"
    else:
        decides = f"over {MAX_SEEDS} seeds: the evaluation split decides"
    return f"{verdict} ({decides}{'; ' + reason if reason else ''})"

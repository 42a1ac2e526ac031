"""Successive halving over arms = (strategy, lr): the rungs' epoch budgets, each rung's
decision, and who goes on to the full protocol (docs/search.md).

Every decision is a pure function of the rung's results, a frame with one row per arm:
``strategy``, ``lr``, ``score`` (the best early-stopping-split main metric so far),
``epochs`` (trained so far), ``over`` (training has ended), ``may_stop`` (the strategy's
schedule has reached its final form, so its score can be compared with any other's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import pandas as pd

from medft.strategies import REFERENCE

ARM = ["strategy", "lr"]
DECISION_COLUMNS = [
    *ARM,
    "score",
    "epochs",
    "over",
    "may_stop",
    "pool",
    "rank",
    "pool_size",
    "survives",
    "reason",
]


@dataclass(frozen=True)
class SearchSettings:
    """The config's ``search`` section; the defaults' reasons are in docs/search.md."""

    enabled: bool = False
    eta: int = 3  # keep the top 1/eta of each pool at every decision
    first_rung_epochs: int = 2
    rungs: int = 3  # the last rung is the full protocol with every seed

    def __post_init__(self) -> None:
        if self.eta < 2:
            raise ValueError(f"search.eta must be at least 2, got {self.eta}")
        if self.first_rung_epochs < 1:
            raise ValueError(
                f"search.first_rung_epochs must be at least 1, got {self.first_rung_epochs}"
            )
        if self.rungs < 2:
            raise ValueError(f"search.rungs must be at least 2 (one decision), got {self.rungs}")

    @classmethod
    def from_config(cls, section: dict | None) -> SearchSettings:
        section = section or {}
        unknown = set(section) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"search has unknown keys {sorted(unknown)}")
        return cls(**section)

    def budgets(self, max_epochs: int) -> list[int]:
        """The epoch budget of every rung that ends in a decision (all but the last)."""
        return [
            min(self.first_rung_epochs * self.eta**k, max_epochs) for k in range(self.rungs - 1)
        ]

    @property
    def last_decision(self) -> int:
        return self.rungs - 2


def keep(n: int, eta: int) -> int:
    """How many of a pool of ``n`` go on: the top ⌈n/η⌉ (at least one)."""
    return max(1, math.ceil(n / eta))


def decide(results: pd.DataFrame, eta: int) -> pd.DataFrame:
    """Rank the arms and mark who goes on.

    Arms whose strategy may stop (``may_stop``) form one pool and are ranked against each
    other. An arm that may not stop yet (gradual unfreezing before every block trains, LP-FT
    in one run before its LP stage ends) cannot be compared with the others at this budget:
    it is ranked only among its own strategy's arms (the same schedule at other lrs, a fair
    comparison), and that pool's top ⌈n/η⌉ go on. A missing score (NaN) ranks last.
    """
    frame = results.copy()
    frame["pool"] = [
        "all strategies" if ready else f"{strategy} only"
        for strategy, ready in zip(frame["strategy"], frame["may_stop"], strict=True)
    ]
    # Ties go to the arm listed first (the config's order), so a re-run decides the same.
    frame = frame.assign(_score=frame["score"].fillna(-math.inf)).sort_values(
        "_score", ascending=False, kind="stable"
    )
    pools = frame.groupby("pool", sort=False)
    frame["rank"] = pools.cumcount() + 1
    frame["pool_size"] = pools["pool"].transform("size")
    frame["survives"] = frame["rank"] <= frame["pool_size"].map(lambda n: keep(n, eta))
    frame["reason"] = [
        f"{'top' if kept else 'out:'} {rank} of {n} ({pool}"
        + ("" if ready else "; not comparable yet")
        + ")"
        for kept, rank, n, pool, ready in zip(
            frame["survives"],
            frame["rank"],
            frame["pool_size"],
            frame["pool"],
            frame["may_stop"],
            strict=True,
        )
    ]
    frame = frame.sort_index()
    return frame[DECISION_COLUMNS]


def read_decision(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"lr": str})


def survivors(decision: pd.DataFrame) -> list[tuple[str, str]]:
    """The arms that go on, in the decision's order."""
    kept = decision[decision["survives"]]
    return list(zip(kept["strategy"], kept["lr"].map(str), strict=True))


def reference_arm(decisions: list[pd.DataFrame]) -> tuple[str, str] | None:
    """FT's arm for the verdict "better than FT": the FT arm that went furthest, best score
    at the last decision it took part in; None when the search has no FT arm."""
    for decision in reversed(decisions):
        ft = decision[decision["strategy"] == REFERENCE]
        if len(ft):
            best = ft.assign(_s=ft["score"].fillna(-math.inf)).sort_values(
                "_s", ascending=False, kind="stable"
            )
            return REFERENCE, str(best["lr"].iloc[0])
    return None


def finalists(decisions: list[pd.DataFrame]) -> pd.DataFrame:
    """Who gets every seed at the full protocol: the last decision's survivors, and FT's
    best arm as the reference when it did not survive (columns strategy, lr, role)."""
    rows = [{"strategy": s, "lr": lr, "role": "survivor"} for s, lr in survivors(decisions[-1])]
    reference = reference_arm(decisions)
    if reference and reference not in {(r["strategy"], r["lr"]) for r in rows}:
        rows.append({"strategy": reference[0], "lr": reference[1], "role": "FT reference"})
    return pd.DataFrame(rows, columns=["strategy", "lr", "role"])


def planned_epochs(
    strategies: list[str],
    n_lrs: int,
    comparable_from: dict[str, int],
    settings: SearchSettings,
    max_epochs: int,
    n_seeds: int,
) -> dict[str, int]:
    """Upper bounds on the epochs the search trains (no arm stops early) and on its jobs, by
    the rule of ``decide``: ``comparable_from[s]`` is the first epoch (0-based) at which
    strategy ``s`` may stop. Pools are counted, not scored, so this holds before anything
    runs."""
    budgets = settings.budgets(max_epochs)
    alive = {s: n_lrs for s in strategies}
    trained = dict.fromkeys(strategies, 0)  # epochs per arm so far, by strategy
    total = jobs = 0
    for k, budget in enumerate(budgets):
        jobs += sum(alive.values())
        settle = k == settings.last_decision
        reach = {
            s: min(max_epochs, max(budget, comparable_from[s] + 1) if settle else budget)
            for s in alive
        }
        total += sum(alive[s] * (reach[s] - trained[s]) for s in alive)
        trained = reach
        ready = [s for s in alive if reach[s] - 1 >= comparable_from[s]]
        pooled = sum(alive[s] for s in ready)
        # Which strategies fill the pooled survivors is unknown: charge the most-trained.
        kept_pooled = keep(pooled, settings.eta) if pooled else 0
        survivors_by = {s: keep(alive[s], settings.eta) for s in alive if s not in ready}
        by_training = sorted(ready, key=lambda s: -reach[s])
        for s in by_training:
            take = min(alive[s], kept_pooled)
            if take:
                survivors_by[s] = take
            kept_pooled -= take
        alive = survivors_by
    # FT's best arm joins the finalists when it is not among the survivors: count it always.
    reference = REFERENCE in strategies
    finalists = sum(alive.values()) + reference
    seed0 = sum(alive[s] * (max_epochs - trained[s]) for s in alive)
    seed0 += reference * (max_epochs - budgets[0])
    return {
        "epochs": total + seed0 + finalists * max_epochs * (n_seeds - 1),
        "jobs": jobs + finalists * n_seeds,
    }

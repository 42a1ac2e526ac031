"""Successive halving over arms = (strategy, lr): the rungs' epoch budgets, each rung's
decision, and who goes on to the full protocol (docs/search.md).

Every decision is a pure function of the rung's results, a frame with one row per arm:
``strategy``, ``lr``, ``score`` (the best early-stopping-split main metric so far),
``epochs`` (trained so far), ``over`` (training has ended), ``may_stop`` (the strategy's
schedule has reached its final form, so its score can be compared with any other's) and,
optionally, ``diverged`` (the run stopped on a non-finite or exploding loss).

FT, the reference every verdict is against, is not searched: it trains at the full protocol
(every lr, every seed), as in the grid, and the FT arm the grid would choose is the reference.
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
    "diverged",
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
    eta: int = 5  # keep the top 1/eta of each pool at every decision
    first_rung_epochs: int = 1
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

    def budgets(self, max_epochs: int, settle_at: int = 0) -> list[int]:
        """The epoch budget of every rung that ends in a decision (all but the last). The last
        decision compares every arm at the same training, from ``settle_at`` epochs on (the
        first epoch count at which every searched strategy's schedule has its final form)."""
        budgets = [
            min(self.first_rung_epochs * self.eta**k, max_epochs) for k in range(self.rungs - 1)
        ]
        budgets[-1] = min(max(budgets[-1], settle_at), max_epochs)
        return budgets

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
    comparison), and that pool's top ⌈n/η⌉ go on — but a pool needs two arms to decide
    anything, so an arm alone in its pool is ranked with all strategies (no arm is carried by
    a pool of one). A diverged arm is out; a missing score (NaN) ranks last.
    """
    frame = results.copy()
    diverged = frame["diverged"].fillna(False).astype(bool) if "diverged" in frame else False
    frame["diverged"] = diverged
    own = frame["strategy"].where(~frame["may_stop"].astype(bool))
    alone = own.map(own.value_counts()).fillna(0) < 2
    frame["pool"] = [
        "diverged" if gone else "all strategies" if single else f"{strategy} only"
        for strategy, single, gone in zip(frame["strategy"], alone, frame["diverged"], strict=True)
    ]
    # Ties go to the arm listed first (the config's order), so a re-run decides the same.
    frame = frame.assign(_score=frame["score"].fillna(-math.inf)).sort_values(
        "_score", ascending=False, kind="stable"
    )
    pools = frame.groupby("pool", sort=False)
    frame["rank"] = pools.cumcount() + 1
    frame["pool_size"] = pools["pool"].transform("size")
    frame["survives"] = (frame["rank"] <= frame["pool_size"].map(lambda n: keep(n, eta))) & (
        ~frame["diverged"]
    )
    frame["reason"] = [
        "out: diverged"
        if gone
        else f"{'top' if kept else 'out:'} {rank} of {n} ({pool}"
        + ("" if ready else "; not comparable yet")
        + ")"
        for kept, rank, n, pool, ready, gone in zip(
            frame["survives"],
            frame["rank"],
            frame["pool_size"],
            frame["pool"],
            frame["may_stop"],
            frame["diverged"],
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


def finalists(decisions: list[pd.DataFrame]) -> pd.DataFrame:
    """Who gets every seed at the full protocol: the last decision's survivors (columns
    strategy, lr, role). FT is not among them: it runs at the full protocol anyway."""
    rows = [{"strategy": s, "lr": lr, "role": "survivor"} for s, lr in survivors(decisions[-1])]
    return pd.DataFrame(rows, columns=["strategy", "lr", "role"])


def settle_epochs(comparable_from: dict[str, int]) -> int:
    """The epochs after which every searched strategy's schedule has its final form."""
    searched = [e for s, e in comparable_from.items() if s != REFERENCE]
    return max(searched) + 1 if searched else 0


def planned_epochs(
    strategies: list[str],
    n_lrs: int,
    comparable_from: dict[str, int],
    settings: SearchSettings,
    max_epochs: int,
    n_seeds: int,
    first_stages: tuple[str, ...] = (),
    followers: tuple[str, ...] = (),
) -> dict[str, int]:
    """Upper bounds on the epochs the search trains and on its jobs, by the rule of
    ``decide`` (no arm stopping early, the most survivors its pools allow): FT at the full
    protocol (every lr and seed); the searched arms' seed-0 rungs, ``first_stages`` (LP, that
    LP-FT starts from) trained to the end at seed 0; and every seed of the finalists, with
    their first stage's runs (``followers``: the strategies that start from a first stage).
    ``comparable_from[s]`` is the first epoch (0-based) at which
    strategy ``s`` may stop. Pools are counted, not scored, so this holds before anything
    runs."""
    searched = [s for s in strategies if s != REFERENCE]
    budgets = settings.budgets(max_epochs, settle_epochs(comparable_from))
    reference = max_epochs * n_lrs * n_seeds if REFERENCE in strategies else 0
    total, jobs = reference, (n_lrs * n_seeds if reference else 0)
    alive = {s: n_lrs for s in searched}
    trained = dict.fromkeys(searched, 0)  # epochs per arm so far, by strategy
    for budget in budgets:
        jobs += sum(alive.values())
        reach = {s: max_epochs if s in first_stages else budget for s in alive}
        total += sum(alive[s] * (reach[s] - trained[s]) for s in alive)
        trained.update(reach)
        ready = [s for s in alive if budget - 1 >= comparable_from[s]]
        # The most survivors: every strategy not ready in a pool of its own (an arm alone
        # there joins the ready pool, which keeps no more), the ready pool its top 1/eta.
        pooled = sum(alive[s] for s in ready) + sum(
            alive[s] for s in alive if s not in ready and alive[s] < 2
        )
        kept_pooled = keep(pooled, settings.eta) if pooled else 0
        survivors_by = {
            s: keep(alive[s], settings.eta) for s in alive if s not in ready and alive[s] >= 2
        }
        # First stages trained to the end at the first rung: any other survivor costs more.
        for s in sorted(alive, key=lambda s: s in first_stages):
            if s in survivors_by:
                continue
            take = min(alive[s], kept_pooled)
            if take:
                survivors_by[s] = take
            kept_pooled -= take
        alive = survivors_by
    finalists = sum(alive.values())
    # Every finalist could be a follower, whose other seeds need their first stage's runs.
    with_first = min(finalists, n_lrs * len(followers)) if first_stages else 0
    total += sum(alive[s] * (max_epochs - trained[s]) for s in alive)
    total += (finalists + with_first) * max_epochs * (n_seeds - 1)
    return {
        "epochs": total,
        "jobs": jobs + finalists * n_seeds + with_first * (n_seeds - 1),
    }

"""The budgeted search: rung decisions on arms with known learning curves (a fake trainer),
a real run paused at a rung and resumed, and the cost bound."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medft.engine import Cell, TrainConfig
from medft.search import progress, replay
from medft.search.rungs import (
    SearchSettings,
    decide,
    planned_epochs,
    read_decision,
    settle_epochs,
    survivors,
)

SETTINGS = SearchSettings(enabled=True, eta=3, first_rung_epochs=1, rungs=3)
MAX_EPOCHS = 12
# Gradual unfreezing of a 9-block model may stop from epoch 8 (every block trains).
COMPARABLE_FROM = {"FT": 0, "LP": 0, "L2-SP": 0, "G-LF": 8}


class FakeTrainer:
    """Arms whose validation score at each epoch is known in advance. Like the engine, an arm
    continues from its own epoch counter, and it records every epoch it trains."""

    def __init__(self, curves: dict[tuple[str, str], list[float]]) -> None:
        self.curves = curves
        self.trained: dict[tuple[str, str], int] = dict.fromkeys(curves, 0)
        self.log: list[tuple[str, str, int]] = []

    def may_stop(self, strategy: str, epoch: int) -> bool:
        return epoch >= COMPARABLE_FROM[strategy]

    def advance(self, arm: tuple[str, str], budget: int, settle: bool) -> dict:
        strategy, lr = arm
        while self.trained[arm] < budget or (
            settle and not self.may_stop(strategy, self.trained[arm] - 1)
        ):
            self.log.append((strategy, lr, self.trained[arm]))
            self.trained[arm] += 1
        epochs = self.trained[arm]
        return {
            "strategy": strategy,
            "lr": lr,
            "score": max(self.curves[arm][:epochs]),
            "epochs": epochs,
            "over": epochs >= MAX_EPOCHS,
            "may_stop": self.may_stop(strategy, epochs - 1),
        }


def run_search(trainer: FakeTrainer, folder, start_rung: int = 0) -> list[pd.DataFrame]:
    """The rungs as the workflow runs them: each decision written to a file, and the next
    rung's arms read back from it (so a search can stop between rungs and go on)."""
    folder.mkdir(parents=True, exist_ok=True)
    arms = [arm for arm in trainer.curves if arm[0] != "FT"]  # FT runs the full protocol
    if start_rung:
        arms = survivors(read_decision(folder / f"decision{start_rung - 1}.csv"))
    for k, budget in enumerate(SETTINGS.budgets(MAX_EPOCHS, settle_epochs(COMPARABLE_FROM))):
        if k < start_rung:
            continue
        settle = k == SETTINGS.last_decision
        results = pd.DataFrame([trainer.advance(arm, budget, settle) for arm in arms])
        decide(results, SETTINGS.eta).to_csv(folder / f"decision{k}.csv", index=False)
        arms = survivors(read_decision(folder / f"decision{k}.csv"))
    return [read_decision(folder / f"decision{k}.csv") for k in range(SETTINGS.rungs - 1)]


def linear(start: float, step: float) -> list[float]:
    return [start + step * e for e in range(MAX_EPOCHS)]


CURVES = {
    ("FT", "0.001"): linear(0.60, 0.02),
    ("FT", "0.0001"): linear(0.70, 0.01),
    ("FT", "1e-05"): linear(0.50, 0.005),
    ("LP", "0.001"): linear(0.65, 0.0),
    ("LP", "0.0001"): linear(0.55, 0.0),
    ("LP", "1e-05"): linear(0.52, 0.0),
    ("L2-SP", "0.001"): linear(0.62, 0.015),
    ("L2-SP", "0.0001"): linear(0.69, 0.008),
    ("L2-SP", "1e-05"): linear(0.51, 0.004),
    # A slow starter: poor while only some blocks train, the best of all once every block
    # does (epoch 8 on).
    ("G-LF", "0.001"): [0.40] * 8 + [0.95] * 4,
    ("G-LF", "0.0001"): [0.45] * 8 + [0.80] * 4,
    ("G-LF", "1e-05"): [0.30] * 8 + [0.60] * 4,
}


def test_each_rung_keeps_the_top_third_of_each_pool(tmp_path):
    decisions = run_search(FakeTrainer(CURVES), tmp_path)
    first, second = decisions
    # Rung 1 (1 epoch): the 6 comparable arms keep 2 by score at epoch 0; G-LF, not
    # comparable yet, keeps its best lr of 3 in its own pool. FT is not searched.
    assert set(survivors(first)) == {("L2-SP", "0.0001"), ("LP", "0.001"), ("G-LF", "0.0001")}
    assert "FT" not in set(first["strategy"])
    assert first.set_index(["strategy", "lr"]).loc[("G-LF", "0.0001"), "pool"] == "G-LF only"
    # The last decision compares every arm at the same training: 9 epochs, from which
    # G-LF's schedule has its final form.
    assert second["epochs"].eq(9).all() and second["pool"].eq("all strategies").all()
    assert survivors(second) == [("G-LF", "0.0001")]


def test_a_slow_starter_is_not_eliminated_for_being_slow(tmp_path):
    trainer = FakeTrainer(CURVES)
    decisions = run_search(trainer, tmp_path)
    # In one pool, G-LF's 0.45 at epoch 0 would rank 8th of 9: out at the first cut.
    first = decisions[0].set_index(["strategy", "lr"])
    assert first.loc[("G-LF", "0.0001"), "score"] < first["score"].median()
    assert ("G-LF", "0.0001") in survivors(decisions[-1])
    assert trainer.trained[("G-LF", "0.001")] == 1


def ranked(rows: list[tuple]) -> pd.DataFrame:
    columns = ["strategy", "lr", "score", "may_stop", "diverged"]
    frame = pd.DataFrame(rows, columns=columns)
    return decide(frame.assign(epochs=3, over=frame["diverged"]), eta=3).set_index(
        ["strategy", "lr"]
    )


def test_a_lone_slow_starter_with_a_poor_score_is_cut():
    decision = ranked(
        [
            ("L2-SP", "0.001", 0.90, True, False),
            ("LP", "0.001", 0.85, True, False),
            ("L2-SP", "0.0001", 0.80, True, False),
            ("G-LF", "0.001", 0.10, False, False),  # alone in its pool: ranked with all
        ]
    )
    assert decision.loc[("G-LF", "0.001"), "pool"] == "all strategies"
    assert not decision.loc[("G-LF", "0.001"), "survives"]
    # Two lrs of it still make a pool of their own, where its better lr goes on.
    two = ranked(
        [
            ("L2-SP", "0.001", 0.90, True, False),
            ("G-LF", "0.001", 0.10, False, False),
            ("G-LF", "0.0001", 0.12, False, False),
        ]
    )
    assert two.loc[("G-LF", "0.0001"), "survives"] and two.loc[("G-LF", "0.0001"), "pool"] == (
        "G-LF only"
    )


def test_a_diverged_arm_is_never_a_finalist():
    decision = ranked(
        [
            ("L2-SP", "0.001", 0.99, True, True),  # its best epoch before diverging was best
            ("LP", "0.001", 0.85, True, False),
            ("L2-SP", "0.0001", 0.80, True, False),
        ]
    )
    assert survivors(decision.reset_index()) == [("LP", "0.001")]
    assert decision.loc[("L2-SP", "0.001"), "reason"] == "out: diverged"


def fake_grid(curves, seeds=(0, 1, 2), seed_shift=None) -> replay.Grid:
    """A grid whose seed-s curve is the arm's curve shifted by ``seed_shift[arm][s]``."""
    seed_shift = seed_shift or {}
    epochs, runs = [], []
    for (strategy, lr), curve in curves.items():
        for seed in seeds:
            shift = seed_shift.get((strategy, lr), [0.0] * len(seeds))[seed]
            scores = [v + shift for v in curve]
            epochs += [
                {
                    "strategy": strategy,
                    "lr": lr,
                    "seed": seed,
                    "epoch": e,
                    "score": v,
                    "may_stop": e >= COMPARABLE_FROM[strategy],
                }
                for e, v in enumerate(scores)
            ]
            runs.append(
                {
                    "strategy": strategy,
                    "lr": lr,
                    "seed": seed,
                    "select": max(scores),
                    "test": max(scores),
                    "diverged": False,
                }
            )
    return replay.Grid(pd.DataFrame(epochs), pd.DataFrame(runs))


def test_the_ft_reference_is_the_full_protocol_ft():
    # FT lr=1e-3 starts ahead on seed 0 but is the worst FT on average over seeds at the full
    # protocol; the reference is the FT arm the grid would choose.
    shifts = {("FT", "0.001"): [0.05, -0.3, -0.3]}
    grid = fake_grid(CURVES, seed_shift=shifts)
    outcome = replay.search(grid, SETTINGS, MAX_EPOCHS)
    assert outcome.reference == replay.choose(grid.runs[grid.runs["strategy"] == "FT"])
    assert outcome.reference == ("FT", "0.0001")
    for lr in ("0.001", "0.0001", "1e-05"):  # every FT lr and seed, to the end
        assert all(outcome.trained[("FT", lr, seed)] == MAX_EPOCHS for seed in (0, 1, 2))


def test_the_replay_trains_what_the_search_trains(tmp_path):
    trainer = FakeTrainer(CURVES)
    decisions = run_search(trainer, tmp_path)
    outcome = replay.search(fake_grid(CURVES), SETTINGS, MAX_EPOCHS)
    for mine, theirs in zip(outcome.decisions, decisions, strict=True):
        pd.testing.assert_frame_equal(
            mine.reset_index(drop=True), theirs, check_dtype=False, check_like=True
        )
    for (strategy, lr), n in trainer.trained.items():
        if strategy not in ("FT", "LP") and (strategy, lr) not in outcome.finalists:
            assert outcome.trained[(strategy, lr, 0)] == n


def test_survivors_continue_their_epoch_count(tmp_path):
    trainer = FakeTrainer(CURVES)
    run_search(trainer, tmp_path)
    l2sp = [epoch for s, lr, epoch in trainer.log if (s, lr) == ("L2-SP", "0.0001")]
    assert l2sp == list(range(9))  # rung 1: epoch 0; rung 2: epochs 1 to 8, never 0 again
    assert len(trainer.log) == len(set(trainer.log))


def test_an_interrupted_search_resumes_without_retraining(tmp_path):
    straight = run_search(FakeTrainer(CURVES), tmp_path / "straight")
    (tmp_path / "cut").mkdir()
    trainer = FakeTrainer(CURVES)
    # Stopped after the first decision: a new process picks up from its file.
    arms = [arm for arm in CURVES if arm[0] != "FT"]
    first = decide(pd.DataFrame([trainer.advance(a, 1, False) for a in arms]), SETTINGS.eta)
    first.to_csv(tmp_path / "cut" / "decision0.csv", index=False)
    before = list(trainer.log)
    resumed = run_search(trainer, tmp_path / "cut", start_rung=1)
    new = trainer.log[len(before) :]
    assert all(epoch >= 1 for _, _, epoch in new)  # no first-rung epoch trained again
    assert len(trainer.log) == len(set(trainer.log))
    for a, b in zip(straight, resumed, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_ties_and_missing_scores_are_decided_the_same_every_time():
    results = pd.DataFrame(
        {
            "strategy": ["FT", "LP", "L2-SP", "FT"],
            "lr": ["0.001", "0.001", "0.001", "0.0001"],
            "score": [0.7, 0.7, None, 0.7],
            "epochs": [1, 1, 1, 1],
            "over": [False] * 4,
            "may_stop": [True] * 4,
        }
    )
    decision = decide(results, eta=3)
    assert survivors(decision) == [("FT", "0.001"), ("LP", "0.001")]
    assert decision.set_index(["strategy", "lr"]).loc[("L2-SP", "0.001"), "rank"] == 4


def test_planned_epochs_bound_what_the_search_trains():
    strategies = ["FT", "LP", "L2-SP", "G-LF"]
    grid = fake_grid(CURVES)
    bound = planned_epochs(strategies, 3, COMPARABLE_FROM, SETTINGS, MAX_EPOCHS, 3, ("LP",))
    for settings in (SETTINGS, SearchSettings(enabled=True, eta=2, first_rung_epochs=1)):
        trained = replay.search(grid, settings, MAX_EPOCHS).trained
        bound = planned_epochs(strategies, 3, COMPARABLE_FROM, settings, MAX_EPOCHS, 3, ("LP",))
        assert sum(trained.values()) <= bound["epochs"]
    assert bound["epochs"] < len(strategies) * 3 * 3 * MAX_EPOCHS


@pytest.mark.parametrize(
    ("section", "message"),
    [({"eta": 1}, "eta"), ({"rungs": 1}, "rungs"), ({"etta": 3}, "unknown keys")],
)
def test_bad_search_settings_are_refused(section, message):
    with pytest.raises(ValueError, match=message):
        SearchSettings.from_config(section)


# -- the real engine: a run paused at a rung --------------------------------------------------
def cell_config(data, out, **overrides) -> TrainConfig:
    settings = dict(
        model="test_resnet", weights="none", strategy="FT", lr=1e-3, seed=0, epochs=4,
        patience=10, batch_size=16,
    )  # fmt: skip
    return TrainConfig(data=str(data), out=str(out), **{**settings, **overrides})


def test_a_paused_run_resumes_where_it_stopped_and_equals_a_straight_run(tiny_datasets, tmp_path):
    data = tiny_datasets["binary"]
    straight = Cell(cell_config(data, tmp_path / "straight")).run()
    out = tmp_path / "arm"
    first = progress.advance(cell_config(data, out), 0, 1, False, out / "rung0.json")
    assert first["epochs"] == 1 and not first["over"]
    assert (out / "last.pt").exists() and not (out / "metrics.json").exists()
    second = progress.advance(cell_config(data, out), 1, 3, False, out / "rung1.json")
    assert second["epochs"] == 3
    assert pd.read_csv(out / "epochs.csv")["epoch"].tolist() == [0, 1, 2]
    finished = Cell(cell_config(data, out)).run()  # the finalist's full run: one more epoch
    assert finished["epochs_trained"] == 4
    log = pd.read_csv(out / "epochs.csv")
    reference = pd.read_csv(tmp_path / "straight" / "epochs.csv")
    pd.testing.assert_frame_equal(log.drop(columns="seconds"), reference.drop(columns="seconds"))
    for split in ("val", "test"):
        assert finished["metrics"][split] == pytest.approx(straight["metrics"][split])
    assert json.loads((out / "rung1.json").read_text())["score"] == pytest.approx(
        log["val_auroc"].iloc[:3].max()
    )


def test_a_slow_starter_settles_until_it_may_stop(tiny_datasets, tmp_path):
    data = tiny_datasets["binary"]
    out = tmp_path / "g-lf"
    result = progress.advance(
        cell_config(data, out, strategy="G-LF", epochs=8), 1, 1, True, out / "rung1.json"
    )
    blocks = len(pd.read_csv(out / "epochs.csv").filter(like="lr_").columns)
    assert result["epochs"] == blocks  # every block trains from epoch blocks - 1
    assert result["may_stop"]


def test_a_run_whose_training_ends_within_a_rung_finishes_without_training_again(
    tiny_datasets, tmp_path
):
    data = tiny_datasets["binary"]
    out = tmp_path / "ends"
    config = cell_config(data, out, epochs=2)
    result = progress.advance(config, 0, 3, False, out / "rung0.json")
    assert result["over"] and result["epochs"] == 2
    trained = len(pd.read_csv(out / "epochs.csv"))
    summary = Cell(config).run()
    assert summary["epochs_trained"] == trained == len(pd.read_csv(out / "epochs.csv"))


def test_a_finished_run_is_judged_on_the_rungs_epochs_only(tiny_datasets, tmp_path):
    data = tiny_datasets["binary"]
    out = tmp_path / "lp"
    Cell(cell_config(data, out, strategy="LP")).run()
    log = pd.read_csv(out / "epochs.csv")
    result = progress.advance(cell_config(data, out, strategy="LP"), 0, 2, False, out / "r.json")
    assert result["epochs"] == 2
    assert result["score"] == pytest.approx(log["val_auroc"].iloc[:2].max())
    assert not result["over"]


def test_the_search_counts_every_run_it_trains_and_backbone_passes_only():
    from medft.search.recommend import search_cost
    from medft.workflow import Grid, load_config

    config = load_config(["config.yaml", "config/demo.yaml"])
    config.update(lrs=[3.0e-3, 1.0e-3], seeds=[0, 1, 2, 3])  # two lrs, four seeds
    grid = Grid(config)
    chosen = pd.DataFrame([{"strategy": "LP-FT", "lr": "0.003", "role": "survivor"}])
    runs = {
        (r["strategy"], r["lr"], r["seed"])
        for r in grid.search_plan.runs("synth-nodule", "efficientnet_lite0", chosen)
    }
    # Every searched arm's seed 0; LP-FT's and its LP's other seeds; FT's every lr and seed.
    assert len(runs) == len(grid.search_plan.arms("synth-nodule")) + 3 + 3 + 2 * 4
    assert {("LP", "0.003", seed) for seed in (1, 2, 3)} <= runs
    assert {("FT", lr, seed) for lr in ("0.003", "0.001") for seed in range(4)} <= runs
    assert "FT" not in {s for s, _ in grid.search_plan.arms("synth-nodule")}
    logs = pd.DataFrame({"strategy": ["FT"] * 3 + ["LP"] * 5, "seconds": [1.0] * 8})
    spent = search_cost(
        logs, n_train=100, epoch_s={"FT": 2.0, "LP": 0.0}, head_only=["LP"], n_images=150
    )
    # LP's five epochs train a head on cached features: the features job's one pass counts.
    assert spent["image_passes"] == 3 * 100 + 150
    assert spent["epochs"] == 8 and spent["hours_model"] == pytest.approx(6 / 3600)


GRIDS = Path(__file__).resolve().parents[1] / "bench" / "search" / "grids"


@pytest.mark.parametrize(
    "folder", sorted(GRIDS.glob("*/grid.json")) or [None], ids=lambda p: p and p.parent.name
)
def test_the_plans_upper_bound_holds_on_every_stored_grid(folder):
    """`medft plan`'s bound (planned_epochs) against what the search trains on the real grids
    of bench/search/grids (bench/results_search.md), at the defaults and the variants."""
    if folder is None:
        pytest.skip("no stored grid in bench/search/grids (bench/search/store_grid.py)")
    grid = replay.load_stored(folder.parent).grid
    runs, epochs = grid.runs, grid.epochs
    ready = epochs[epochs["may_stop"].astype(bool)].groupby("strategy")["epoch"].min()
    strategies = sorted(runs["strategy"].unique())
    for settings in (
        SearchSettings(enabled=True),
        SearchSettings(enabled=True, first_rung_epochs=1, rungs=4),
        SearchSettings(enabled=True, eta=4, first_rung_epochs=1),
    ):
        trained = replay.search(grid, settings, MAX_EPOCHS).trained
        bound = planned_epochs(
            strategies,
            3,
            ready.to_dict(),
            settings,
            MAX_EPOCHS,
            3,
            first_stages=("LP",),
            followers=("LP-FT",),
        )
        assert sum(trained.values()) <= bound["epochs"]


def test_an_equivalent_recommendation_line_shows_the_interval_it_rests_on():
    from medft.search.recommend import _verdict_sentence

    row = pd.Series(
        {
            "verdict": "equivalent",
            "seeds_to_decide": float("nan"),
            "comparison": "vs FT",
            "against_arm": "FT lr=0.001",
            "diff_mean": 0.05,
            "n_pairs": 5,
            "low": -3.9,
            "high": 4.0,
            "p_value": 0.9,
            "p_holm": 1.0,
            "eq_low": -0.2,
            "eq_high": 0.3,
            "margin": 1.0,
        }
    )
    line = _verdict_sentence(row, "auroc")
    assert "**equivalent**" in line and "equivalence interval [-0.20, +0.30] within ±1 pp" in line
    unsure = _verdict_sentence(pd.Series({**row, "verdict": "inconclusive"}), "auroc")
    assert "equivalence interval" not in unsure
    untested = pd.Series(
        {**row, "verdict": "not tested", "reason": "r", "p_value": None, "low": None, "high": None}
    )
    assert _verdict_sentence(untested, "auroc").endswith("over 5 seed pairs")


def test_a_recommendation_the_evaluation_split_chose_is_not_tested(tmp_path):
    """Arms chosen on the split that tests them (`select_lr_on: test`) are flattered there:
    the same lead that is *better* when chosen on validation is withheld, with the reason."""
    import numpy as np

    from medft.report.verdicts import CHOSEN_ON_EVALUATION
    from medft.search.recommend import compare
    from test_statistics import _runs

    runs = _runs(tmp_path, {"LP": lambda s, t: np.where(t == 1, 0.99, 0.01)})
    table = pd.DataFrame({"rank": [1, 2], "strategy": ["LP", "FT"], "lr": [1e-3, 1e-3]})
    on_val = compare(runs, table, {"d": "binary"}, n_boot=200)
    assert on_val["verdict"].tolist() == ["better"]
    on_test = compare(runs, table, {"d": "binary"}, n_boot=200, select_on="test")
    assert on_test["verdict"].tolist() == ["not tested"]
    assert on_test["reason"].tolist() == [CHOSEN_ON_EVALUATION.format(chosen="the lr")]

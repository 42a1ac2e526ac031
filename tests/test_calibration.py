"""Calibration errors against a hand computation, temperature scaling on a model made
over-confident on purpose, multi-label per label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medft.report import calibration as cal


def test_the_four_metrics_equal_a_hand_computation():
    probs = np.array([[0.1, 0.9], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    targets = np.array([1, 0, 0, 1])
    # Top-label confidence .9 .8 .6 .7, right, wrong, right, right; one per bin either way.
    got = cal.scores(probs, targets, multilabel=False)
    assert got["ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert got["adaptive_ece"] == pytest.approx((0.1 + 0.8 + 0.4 + 0.3) / 4)
    assert got["brier"] == pytest.approx((0.02 + 1.28 + 0.32 + 0.18) / 4)
    assert got["nll"] == pytest.approx(-np.log([0.9, 0.2, 0.6, 0.7]).mean())


def overconfident(n: int, rng, factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """A calibrated 3-class model's logits, multiplied by ``factor``: over-confident."""
    logits = rng.normal(0, 1.2, size=(n, 3))
    calibrated = cal._softmax(logits)
    targets = np.array([rng.choice(3, p=p) for p in calibrated])
    return cal._softmax(logits * factor), targets


def test_temperature_scaling_finds_the_over_confidence_and_removes_it():
    rng = np.random.default_rng(0)
    fit_probs, fit_targets = overconfident(4000, rng)
    temperature = cal.fit_temperature(fit_probs, fit_targets, multilabel=False)
    assert temperature[0] == pytest.approx(3.0, rel=0.1)
    probs, targets = overconfident(4000, rng)
    before = cal.scores(probs, targets, multilabel=False)
    after = cal.scores(cal.rescale(probs, temperature, False), targets, multilabel=False)
    assert after["ece"] < before["ece"] / 3 and after["nll"] < before["nll"]


def test_multilabel_is_scored_per_label_and_a_run_reports_both_sides():
    rng = np.random.default_rng(1)
    frames = []
    for split in ("val", "test"):
        logits = rng.normal(0, 2, size=(500, 2))
        targets = (rng.random((500, 2)) < cal._sigmoid(logits)).astype(int)
        probs = cal._sigmoid(logits * 2.5)  # over-confident
        frame = pd.DataFrame(
            {"id": range(500), "split": split, "target_a": targets[:, 0], "target_b": targets[:, 1]}
        )
        frame["prob_a"], frame["prob_b"] = probs[:, 0], probs[:, 1]
        frames.append(frame)
    row = cal.run_calibration(pd.concat(frames))
    assert row["temperature"] == pytest.approx(2.5, rel=0.2)
    assert row["ece_after"] < row["ece_before"] and row["nll_after"] < row["nll_before"]
    # Without a validation split: before only.
    test_only = cal.run_calibration(frames[1])
    assert np.isnan(test_only["ece_after"]) and test_only["ece_before"] == row["ece_before"]

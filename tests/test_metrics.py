import math

import numpy as np
import pytest

from medft.metrics import UndefinedMetricWarning, compute_metrics


def test_binary_matches_hand_computed_values():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.8])
    m = compute_metrics("binary", y, np.stack([1 - p1, p1], 1), ["neg", "pos"])
    # positives {0.4, 0.8} outrank negatives {0.1, 0.6} in 3 of 4 pairs
    assert m["auroc"] == pytest.approx(0.75)
    # both classes: ranked pos, neg, pos, neg → AP = 0.5·1 + 0.5·2/3
    assert m["map"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["kappa"] == pytest.approx(0.0)
    assert m["f1"] == pytest.approx(0.5)


def test_multiclass_matches_hand_computed_values():
    y = np.array([0, 1, 2, 2])
    scores = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7]]
    )  # argmax 0, 1, 1, 2
    m = compute_metrics("multiclass", y, scores, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # p_o = 3/4; p_e = (1·1 + 1·2 + 2·1) / 16
    assert m["kappa"] == pytest.approx((0.75 - 5 / 16) / (1 - 5 / 16))
    # per class one-vs-rest: a 1.0, b 1.0 (0.8 > 0.5, 0.2, 0.1), c: pos {0.3, 0.7} vs {0.1, 0.1}
    assert m["auroc"] == pytest.approx(1.0)
    assert m["balanced_accuracy"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_multilabel_matches_hand_computed_values():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.3, 0.7], [0.6, 0.4], [0.2, 0.1]])
    m = compute_metrics("multilabel", y, scores, ["x", "y"])
    assert m["accuracy"] == pytest.approx((4 / 4 + 3 / 4) / 2)  # eq. 6, threshold 0.5
    assert m["auroc"] == pytest.approx(1.0)
    assert m["map"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx((1 + 2 / 3) / 2)
    # label x: perfect (kappa 1); label y: p_o 3/4, p_e (2·1 + 2·3)/16 = 1/2
    assert m["kappa"] == pytest.approx((1 + 0.5) / 2)


def test_label_with_one_class_is_missing_and_named():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    scores = np.array([[0.9, 0.2], [0.3, 0.7], [0.6, 0.4]])
    with pytest.warns(UndefinedMetricWarning, match="'effusion'"):
        m = compute_metrics("multilabel", y, scores, ["edema", "effusion"])
    assert math.isnan(m["auroc"]) and math.isnan(m["map"])
    assert m["accuracy"] == pytest.approx((1 + 2 / 3) / 2)


def test_single_class_evaluation_split_warns_for_binary():
    with pytest.warns(UndefinedMetricWarning, match="'pos'"):
        m = compute_metrics(
            "binary", np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]]), ["neg", "pos"]
        )
    assert math.isnan(m["auroc"])


def test_bad_shapes_and_task_names_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics("binary", np.array([0, 1]), np.array([0.2, 0.8]), ["a", "b"])
    with pytest.raises(ValueError, match="multilabel"):
        compute_metrics("multi", np.array([0, 1]), np.eye(2), ["a", "b"])

"""The paper's five metrics (plus balanced accuracy), as pure functions over scikit-learn.

Conventions (docs/protocol.md, "Metrics"):

* ``scores`` are probabilities, shape (N, C): softmax for single-label tasks (C = 2 for
  binary), sigmoid for multi-label tasks. ``y_true`` is (N,) class indices for single-label
  tasks and an (N, C) 0/1 matrix for multi-label tasks.
* mAP: mean over classes of ``average_precision_score`` (one-vs-rest for single-label).
* accuracy: single-label ``accuracy_score`` of the argmax; multi-label the paper's eq. 6,
  the mean over labels of the per-label accuracy at threshold 0.5.
* AUROC: macro one-vs-rest; binary tasks use the positive class only.
* kappa: Cohen's kappa of the predicted class (multi-label: mean of per-label kappas at 0.5).
* f1: macro F1 (multi-label: over labels at 0.5).

A metric that is undefined (a class with only one value in ``y_true``) is returned as NaN with
a ``UndefinedMetricWarning`` naming the class, never as 0 or 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

METRICS = ("map", "accuracy", "balanced_accuracy", "auroc", "kappa", "f1")
TASK_TYPES = ("binary", "multiclass", "multilabel")


class UndefinedMetricWarning(UserWarning):
    """A metric cannot be computed on this data and is reported as missing."""


def _warn(metric: str, label: str, why: str) -> float:
    warnings.warn(
        f"{metric} is undefined for label {label!r} ({why}); reported as missing",
        UndefinedMetricWarning,
        stacklevel=3,
    )
    return math.nan


def _per_class_mean(metric, y_onehot, scores, class_names, fn) -> float:
    values = []
    for j, name in enumerate(class_names):
        column = y_onehot[:, j]
        if column.min() == column.max():
            return _warn(metric, name, f"only {'positives' if column[0] else 'negatives'}")
        values.append(fn(column, scores[:, j]))
    return float(np.mean(values))


def _kappa(metric: str, label: str, y_true, y_pred) -> float:
    from sklearn import metrics as skm

    if len(np.unique(np.concatenate([y_true, y_pred]))) < 2:
        return _warn(metric, label, "truth and prediction hold a single class")
    return float(skm.cohen_kappa_score(y_true, y_pred))


def compute_metrics(
    task: str, y_true: np.ndarray, scores: np.ndarray, class_names: Sequence[str]
) -> dict[str, float]:
    """All metrics of ``METRICS`` for one split; values are fractions in [0, 1] (or NaN)."""
    # scikit-learn is imported here: the planner reads METRICS without it.
    from sklearn import metrics as skm

    if task not in TASK_TYPES:
        raise ValueError(f"unknown task type {task!r}; choose one of: {', '.join(TASK_TYPES)}")
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    n_classes = len(class_names)
    if scores.ndim != 2 or scores.shape[1] != n_classes:
        raise ValueError(f"scores must have shape (N, {n_classes}), got {scores.shape}")

    if task == "multilabel":
        y = y_true.astype(int)
        pred = (scores >= 0.5).astype(int)
        per_label = range(n_classes)
        return {
            "map": _per_class_mean("map", y, scores, class_names, skm.average_precision_score),
            "accuracy": float(np.mean([(y[:, j] == pred[:, j]).mean() for j in per_label])),
            "balanced_accuracy": float(
                np.mean([skm.balanced_accuracy_score(y[:, j], pred[:, j]) for j in per_label])
            ),
            "auroc": _per_class_mean("auroc", y, scores, class_names, skm.roc_auc_score),
            "kappa": float(
                np.mean([_kappa("kappa", class_names[j], y[:, j], pred[:, j]) for j in per_label])
            ),
            "f1": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        }

    y = y_true.astype(int).reshape(-1)
    pred = scores.argmax(axis=1)
    onehot = np.eye(n_classes, dtype=int)[y]
    labels = list(range(n_classes))
    if task == "binary":
        if n_classes != 2:
            raise ValueError(f"a binary task has 2 classes, got {n_classes}")
        auroc = _per_class_mean(
            "auroc", onehot[:, 1:], scores[:, 1:], class_names[1:], skm.roc_auc_score
        )
    else:
        auroc = _per_class_mean("auroc", onehot, scores, class_names, skm.roc_auc_score)
    return {
        "map": _per_class_mean("map", onehot, scores, class_names, skm.average_precision_score),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y, pred)),
        "auroc": auroc,
        "kappa": _kappa("kappa", "all classes", y, pred),
        "f1": float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
    }

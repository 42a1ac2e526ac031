"""The metrics of ``medft.metrics`` on many weighted resamples of one evaluation set at once.

A bootstrap resample of patients is a weight per image (how often its patient was drawn), so
``B`` resamples are a (B, N) weight matrix and each metric becomes a weighted one, computed for
all rows together with sorting and cumulative sums instead of ``B`` scikit-learn calls. Each
function equals ``compute_metrics`` on the data with every image repeated ``weight`` times
(the tests check this), NaN included where that is undefined.
"""

from __future__ import annotations

import numpy as np


def _tie_groups(score: np.ndarray, weights: np.ndarray, positive: np.ndarray):
    """Positive and negative weight per distinct score, scores descending: (B, U) each."""
    order = np.argsort(-score, kind="mergesort")
    ordered = score[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    w = weights[:, order]
    pos = positive[order]
    return (
        np.add.reduceat(w * pos, starts, axis=1),
        np.add.reduceat(w * ~pos, starts, axis=1),
    )


def _binary_auroc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    pos, neg = _tie_groups(score, weights, positive)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    below = n_neg[:, None] - np.cumsum(neg, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _binary_ap(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """scikit-learn's ``average_precision_score``: Σ (R_k − R_{k−1}) P_k over thresholds."""
    pos, neg = _tie_groups(score, weights, positive)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall_step = pos / n_pos[:, None]
    ap = (recall_step * precision).sum(axis=1)
    return np.where((n_pos > 0) & (n_neg > 0), ap, np.nan)


def _confusions(truth: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """(B, k, k) weighted confusion matrices, rows = truth."""
    cell = np.eye(k * k)[truth * k + pred]
    return (weights @ cell).reshape(-1, k, k)


def _kappa(conf: np.ndarray) -> np.ndarray:
    total = conf.sum(axis=(1, 2))
    expected = np.einsum("bi,bj->bij", conf.sum(axis=2), conf.sum(axis=1)) / total[:, None, None]
    off = 1 - np.eye(conf.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = 1 - (conf * off).sum(axis=(1, 2)) / (expected * off).sum(axis=(1, 2))
    present = ((conf.sum(axis=2) + conf.sum(axis=1)) > 0).sum(axis=1)
    return np.where(present >= 2, kappa, np.nan)


def _balanced_accuracy(conf: np.ndarray) -> np.ndarray:
    support = conf.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diagonal(conf, axis1=1, axis2=2) / support
    return np.nanmean(np.where(support > 0, recall, np.nan), axis=1)


def _macro_f1(conf: np.ndarray) -> np.ndarray:
    tp = np.diagonal(conf, axis1=1, axis2=2)
    denominator = conf.sum(axis=2) + conf.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return f1.mean(axis=1)


def _per_column(fn, y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over columns; NaN when any column is undefined, as ``compute_metrics`` does."""
    return np.mean([fn(y[:, j].astype(bool), scores[:, j], weights) for j in range(y.shape[1])], 0)


def resampled_metric(
    metric: str, task: str, y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """``metric`` (a ``medft.metrics.METRICS`` name) on each row of ``weights`` (B, N)."""
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    scores = np.asarray(scores, dtype=np.float64)
    if task == "multilabel":
        y = np.asarray(y_true).astype(int)
        pred = (scores >= 0.5).astype(int)
        if metric == "map":
            return _per_column(_binary_ap, y, scores, weights)
        if metric == "auroc":
            return _per_column(_binary_auroc, y, scores, weights)
        if metric == "f1":
            tp = weights @ (y & pred)
            denominator = weights @ y + weights @ pred
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(denominator > 0, 2 * tp / denominator, 0.0).mean(axis=1)
        if metric == "accuracy":
            return (weights @ (y == pred)).mean(axis=1) / weights.sum(axis=1)
        per_label = {"kappa": _kappa, "balanced_accuracy": _balanced_accuracy}[metric]
        return np.mean(
            [per_label(_confusions(y[:, j], pred[:, j], 2, weights)) for j in range(y.shape[1])],
            axis=0,
        )
    y = np.asarray(y_true).astype(int).reshape(-1)
    k = scores.shape[1]
    onehot = np.eye(k, dtype=int)[y]
    if metric == "map":
        return _per_column(_binary_ap, onehot, scores, weights)
    if metric == "auroc":
        columns = slice(1, None) if task == "binary" else slice(None)
        return _per_column(_binary_auroc, onehot[:, columns], scores[:, columns], weights)
    pred = scores.argmax(axis=1)
    if metric == "accuracy":
        return weights @ (pred == y) / weights.sum(axis=1)
    from_confusion = {
        "kappa": _kappa,
        "balanced_accuracy": _balanced_accuracy,
        "f1": _macro_f1,
    }[metric]
    return from_confusion(_confusions(y, pred, k, weights))

"""Calibration: is a 0.9 from this model right 90 % of the time? Per run, on the evaluation
split: expected calibration error with equal-width bins (torchmetrics) and with equal-mass
bins (adaptive), Brier score and negative log-likelihood — before and after temperature
scaling (Guo et al. 2017), its one temperature fitted on the selection split by NLL.

Single-label tasks use the top-label confidence (ECE) and all classes (Brier: the squared
error summed over classes; NLL of the true class). Multi-label tasks are scored per label, as
binary problems, then averaged over labels; each label gets its own temperature.
Predictions are stored as probabilities; their logarithms (softmax) or logits (sigmoid) are
the scores a temperature divides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

N_BINS = 15  # Guo et al.'s choice, torchmetrics' default
EPS = 1e-7
METRICS = ("ece", "adaptive_ece", "brier", "nll")


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def scores_of(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    """What a temperature divides: log-probabilities (softmax) or logits (sigmoid)."""
    p = np.clip(probs, EPS, 1 - EPS)
    return np.log(p / (1 - p)) if multilabel else np.log(p)


def equal_width_ece(probs: np.ndarray, targets: np.ndarray) -> float:
    """Top-label ECE with ``N_BINS`` equal-width bins, by torchmetrics."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    return float(
        multiclass_calibration_error(
            torch.tensor(probs, dtype=torch.float64),
            torch.tensor(targets, dtype=torch.long),
            num_classes=probs.shape[1],
            n_bins=N_BINS,
            norm="l1",
        )
    )


def adaptive_ece(probs: np.ndarray, targets: np.ndarray) -> float:
    """Top-label ECE with ``N_BINS`` bins of (nearly) equal counts (Nixon et al. 2019)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    order = np.argsort(confidence, kind="stable")
    error = 0.0
    for part in np.array_split(order, min(N_BINS, len(order))):
        error += len(part) * abs(confidence[part].mean() - correct[part].mean())
    return float(error / len(order))


def single_label(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    onehot = np.eye(probs.shape[1])[targets]
    return {
        "ece": equal_width_ece(probs, targets),
        "adaptive_ece": adaptive_ece(probs, targets),
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
        "nll": float(-np.log(np.clip(probs[np.arange(len(targets)), targets], EPS, 1)).mean()),
    }


def scores(probs: np.ndarray, targets: np.ndarray, multilabel: bool) -> dict[str, float]:
    """The four metrics (multi-label: each label a binary problem, averaged)."""
    if not multilabel:
        return single_label(probs, targets)
    per_label = [
        single_label(np.stack([1 - probs[:, j], probs[:, j]], axis=1), targets[:, j])
        for j in range(probs.shape[1])
    ]
    return {m: float(np.mean([s[m] for s in per_label])) for m in METRICS}


def fit_temperature(probs: np.ndarray, targets: np.ndarray, multilabel: bool) -> np.ndarray:
    """The temperature(s) minimising NLL on these predictions (one per label if multi-label),
    searched over log T in [-3, 3]."""
    logits = scores_of(probs, multilabel)

    def nll(log_t: float, column: int | None) -> float:
        t = np.exp(log_t)
        if column is None:
            scaled = _softmax(logits / t)
            return -np.log(np.clip(scaled[np.arange(len(targets)), targets], EPS, 1)).mean()
        p = np.clip(_sigmoid(logits[:, column] / t), EPS, 1 - EPS)
        y = targets[:, column]
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()

    columns = range(probs.shape[1]) if multilabel else [None]
    return np.array(
        [
            np.exp(minimize_scalar(nll, bounds=(-3, 3), args=(c,), method="bounded").x)
            for c in columns
        ]
    )


def rescale(probs: np.ndarray, temperature: np.ndarray, multilabel: bool) -> np.ndarray:
    logits = scores_of(probs, multilabel)
    return _sigmoid(logits / temperature) if multilabel else _softmax(logits / temperature[0])


def split_arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, bool]:
    probs = frame.filter(like="prob_").to_numpy(dtype=np.float64)
    if "target" in frame:
        return probs, frame["target"].to_numpy(dtype=int), False
    return probs, frame.filter(like="target_").to_numpy(dtype=int), True


def run_calibration(predictions: pd.DataFrame, fit_on: str = "val") -> dict:
    """One run's metrics on the test split before (``*_before``) and after (``*_after``)
    temperature scaling fitted on ``fit_on``, and the temperature; NaN after where the run
    has no such split."""
    test = predictions[predictions["split"] == "test"]
    probs, targets, multilabel = split_arrays(test)
    row = {f"{m}_before": v for m, v in scores(probs, targets, multilabel).items()}
    fit = predictions[predictions["split"] == fit_on]
    if fit.empty:
        return {**row, "temperature": np.nan, **{f"{m}_after": np.nan for m in METRICS}}
    temperature = fit_temperature(*split_arrays(fit)[:2], multilabel)
    after = scores(rescale(probs, temperature, multilabel), targets, multilabel)
    return {
        **row,
        "temperature": float(np.mean(temperature)),
        **{f"{m}_after": v for m, v in after.items()},
    }


def reliability(probs: np.ndarray, targets: np.ndarray) -> pd.DataFrame:
    """Equal-width bins of top-label confidence: mean confidence, accuracy, count."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    bins = np.minimum((confidence * N_BINS).astype(int), N_BINS - 1)
    frame = pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct})
    return (
        frame.groupby("bin")
        .agg(confidence=("confidence", "mean"), accuracy=("correct", "mean"), n=("correct", "size"))
        .reset_index()
    )

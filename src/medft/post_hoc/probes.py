"""Cheap baselines on the features LP already cached (MedMNIST+ reports them beside
end-to-end training): k-nearest neighbours by cosine similarity and logistic regression, each
tuned on the selection split (k; the inverse regularisation C). Nothing in them depends on the
seed — the features come from the pretrained backbone — so every seed gets the same run,
written once per grid seed so that it pairs with FT's seeds in the statistics."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from medft.post_hoc.context import Job, summary_of, write_derived, write_index

log = logging.getLogger(__name__)

K_CHOICES = (1, 3, 5, 9, 15, 25, 49)
C_CHOICES = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
SPLITS = ("train", "val", "test")


def knn_scores(train: np.ndarray, targets: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Each query's share of its ``k`` most cosine-similar training images per class (or per
    label: ``targets`` one-hot or multi-hot)."""

    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    similarity = unit(query) @ unit(train).T
    nearest = np.argpartition(-similarity, min(k, len(train)) - 1, axis=1)[:, :k]
    return targets[nearest].mean(axis=1)


def logreg_scores(train, targets, query, c: float, multilabel: bool) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = LogisticRegression(C=c, max_iter=2000)
    if multilabel:
        classifier = OneVsRestClassifier(classifier)
    model = make_pipeline(StandardScaler(), classifier).fit(train, targets)
    return model.predict_proba(query)


def _one_hot(targets: np.ndarray, n_classes: int, multilabel: bool) -> np.ndarray:
    return targets.astype(float) if multilabel else np.eye(n_classes)[targets]


def _loss(scores: np.ndarray, targets: np.ndarray, multilabel: bool) -> float:
    p = np.clip(scores, 1e-7, 1 - 1e-7)
    if multilabel:
        return float(-np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p)))
    return float(-np.mean(np.log(p[np.arange(len(targets)), targets])))


def run(job: Job) -> None:
    import torch

    from medft.checkpoints import prediction_frame
    from medft.data.shards import ShardDataset, read_meta
    from medft.loop import split_metrics

    runs = job.runs()
    like = summary_of(runs["run_dir"].iloc[0])
    data = like["config"]["data"]
    meta = read_meta(data)
    saved = torch.load(job.features, map_location="cpu", weights_only=True)["splits"]
    splits = {s: ShardDataset(data, s) for s in SPLITS if s in saved}
    features, targets = {}, {}
    for split, images in splits.items():
        if list(saved[split]["ids"]) != images.ids:
            raise ValueError(f"{job.features}: the {split} features are not of {data}'s images")
        features[split] = saved[split]["features"].float().flatten(1).numpy()
        targets[split] = images.targets.numpy()
    main = like["main_metric"]
    onehot = _one_hot(targets["train"], len(meta.classes), meta.multilabel)
    probes = {
        "kNN": (
            "k",
            K_CHOICES,
            lambda k, q: knn_scores(features["train"], onehot, q, k),
        ),
        "LogReg": (
            "C",
            C_CHOICES,
            lambda c, q: logreg_scores(
                features["train"], targets["train"].astype(int), q, c, meta.multilabel
            ),
        ),
    }
    written = []
    for row in job.rows:
        name, choices, score = probes[row]
        choices = [c for c in choices if name != "k" or c <= len(features["train"])]
        tried = {
            c: split_metrics(
                meta.task, targets[job.select_on], score(c, features[job.select_on]), meta.classes
            )[0][main]
            for c in choices
        }
        best = max(tried, key=lambda c: -np.inf if np.isnan(tried[c]) else tried[c])
        log.info("%s: %s=%g on %s (%s %.4f)", row, name, best, job.select_on, main, tried[best])
        results, frames = {}, []
        for split in ("val", "test"):
            if split not in splits:
                continue
            scores = score(best, features[split])
            metrics = split_metrics(meta.task, targets[split], scores, meta.classes)[0]
            results[split] = {"loss": _loss(scores, targets[split], meta.multilabel), **metrics}
            frames.append(
                prediction_frame(splits[split], split, scores, meta.classes, meta.multilabel)
            )
        predictions = pd.concat(frames)
        for seed in sorted(runs["seed"].unique()):
            written.append(
                write_derived(
                    job,
                    row,
                    like,
                    0.0,
                    int(seed),
                    results,
                    predictions,
                    {name: best, "tried": tried},
                )
            )
    write_index(job, written)

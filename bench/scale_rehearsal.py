"""The path after training at the paper's size (issue 34): every output the cells of
``config.yaml``'s grid would leave, then the workflow's real rules after training, the HTML
report, ``medft status`` and ``medft report RESULTS_DIR`` with 3 % of cells missing.

Run: ``python bench/scale_rehearsal.py [--folder results/scale]``; writes
``bench/results_scale.md``. Nothing trains: each of the 1,728 cells gets what a finished run
leaves — ``metrics.json``, a 50-row ``epochs.csv``, its log, ``predictions.parquet`` over the
validation and evaluation splits at the paper's sizes (Table 2's counts, each task's type and
classes) — with no weights. Strategies differ as in the paper's Tables 3–10
(``reference/paper_tables_3_10.csv``): each (dataset, model, strategy)'s main metric at its
best lr is the published mean (2 and 5 points lower at the other lrs); scores are
``μ·(2y − 1) + noise``, μ set from a per-dataset table of the main metric against μ, the noise
half shared by every strategy of a seed (paired runs), half the run's own. Prepared datasets
are their ``meta.json`` and ``manifest.parquet`` (no shards); LP's features file is a
placeholder (nothing after training reads it). Every file is written before the workflow
starts, in the order the jobs would write them, and ``snakemake --rerun-triggers mtime`` then
plans only the rules after training; their wall time and peak memory come from the rules'
own ``benchmark:`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from medft.architectures import block_count
from medft.data import paper
from medft.data.shards import IMAGENET_MEAN, IMAGENET_STD, DatasetMeta
from medft.disk import folder_bytes
from medft.metrics import compute_metrics
from medft.workflow import Grid, load_config

HERE = Path(__file__).parent
REPO = HERE.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
MEDFT = Path(sys.executable).with_name("medft")
# config.yaml's dataset → (the reference table's name, task, classes, main metric)
TASKS = {
    "chexpert": ("CheXpert", "multilabel", paper.CHEXPERT_LABELS, "map"),
    "mura-shoulder": ("MURA-Shoulder", "binary", ["normal", "abnormal"], "accuracy"),
    "mura-wrist": ("MURA-Wrist", "binary", ["normal", "abnormal"], "accuracy"),
    "mura-humerus": ("MURA-Humerus", "binary", ["normal", "abnormal"], "accuracy"),
    "t1w-mri": ("T1w-MRI", "multiclass", paper.T1W_CLASSES, "accuracy"),
    "bach": ("BACH", "multiclass", paper.BACH_CLASSES, "accuracy"),
    "isic2020": ("ISIC-2020", "binary", ["benign", "malignant"], "auroc"),
    "cholect50": ("CholecT50-Instrument", "multilabel", paper.CHOLECT50_INSTRUMENTS, "map"),
}
MODELS = {"resnet50": "ResNet-50", "densenet121": "DenseNet-121", "vgg19": "VGG-19"}
METRIC_NAMES = {"map": "mAP", "accuracy": "Accuracy", "auroc": "AUROC"}
LR_OFFSETS = (0.0, -2.0, -5.0)  # points below the published mean at the other lrs
EPOCHS = 50
MISSING_SHARE = 0.03


class Targets:
    """One split's labels, and the scores that give a main metric near a target."""

    def __init__(self, task: str, classes: list[str], n: int, main: str, rng) -> None:
        self.task, self.classes, self.n, self.main = task, classes, n, main
        k = len(classes)
        if task == "multilabel":
            prevalence = rng.uniform(0.1, 0.4, k)
            self.y = (rng.random((n, k)) < prevalence).astype(int)
        else:
            self.y = rng.integers(0, k, n)
        self.signs = self._signs()
        grid = np.linspace(-0.5, 6.0, 40)
        noise = rng.normal(size=self.signs.shape)
        self.table = grid, np.array([self.metric(self.scores(m, noise)) for m in grid])

    def _signs(self) -> np.ndarray:
        """+1 where the score of a column should be high, −1 where low."""
        if self.task == "multilabel":
            return 2 * self.y - 1
        onehot = np.eye(len(self.classes))[self.y]
        return 2 * onehot - 1

    def scores(self, mu: float, noise: np.ndarray) -> np.ndarray:
        logits = mu * self.signs / 2 + noise
        if self.task == "multilabel":
            return 1 / (1 + np.exp(-logits))
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def metric(self, scores: np.ndarray, name: str | None = None) -> float:
        return compute_metrics(self.task, self.y, scores, self.classes)[name or self.main]

    def mu_for(self, target: float) -> float:
        grid, values = self.table
        order = np.argsort(values)
        return float(np.interp(target, values[order], grid[order]))


def _prepared(folder: Path, name: str, task: str, classes, counts, tag_size: int) -> None:
    """A prepared dataset's meta.json and manifest.parquet, without shards."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in counts.items():
        for i in range(n):
            row = {"id": f"{name}-{split}-{i:06d}", "split": split, "group": f"p{i // 2:06d}"}
            if task == "multilabel":
                row["labels"] = [int((i >> j) & 1) for j in range(len(classes))]
            else:
                row["label"] = i % len(classes)
            rows.append(row)
    pd.DataFrame(rows).to_parquet(folder / "manifest.parquet", index=False)
    meta = DatasetMeta(name, task, list(classes), tag_size, 3, {"source": "rehearsal"}, counts)
    (folder / "meta.json").write_text(json.dumps(asdict(meta)))


def write_grid(grid: Grid, reference: pd.DataFrame, seed: int = 0) -> int:
    """Every file the grid's cells would leave; returns the number of cells."""
    c = grid.config
    rng = np.random.default_rng(seed)
    cells = 0
    for dataset in grid.datasets:
        name, task, classes, main = TASKS[dataset]
        counts, _ = grid.cost.counts(dataset, c["models"][0])
        for model in c["models"]:
            meta = Path(grid.prepared(dataset, model))
            if not meta.exists():
                tag = grid.preprocess(model, dataset)
                _prepared(meta.parent, dataset, task, classes, counts, tag.resize)
        splits = {s: Targets(task, classes, counts[s], main, rng) for s in ("val", "test")}
        published = reference[
            (reference["dataset"] == name) & (reference["metric"] == METRIC_NAMES[main])
        ].set_index(["model", "strategy"])["mean"]
        for model in c["models"]:
            features = Path(grid.features_path(dataset, model))
            features.parent.mkdir(parents=True, exist_ok=True)
            features.write_bytes(b"rehearsal placeholder: nothing after training reads it")
            shared = {
                (seed_, s): rng.normal(size=t.signs.shape)
                for seed_ in c["seeds"]
                for s, t in splits.items()
            }
            # LP-FT reads LP's checkpoint: its cells come after LP's, as the jobs would
            ordered = sorted(c["strategies"], key=lambda s: grid.first_stage(s) is not None)
            for i, strategy in enumerate(ordered):
                best = published[(MODELS[model], strategy)]
                offsets = np.roll(LR_OFFSETS, (i + c["models"].index(model)) % len(LR_OFFSETS))
                for lr, offset in zip(grid.lrs(dataset), offsets, strict=True):
                    for seed_ in c["seeds"]:
                        _write_cell(
                            grid,
                            (dataset, model, strategy, lr, seed_),
                            splits,
                            shared,
                            (best + offset) / 100,
                            main,
                            task,
                            classes,
                            rng,
                        )
                        cells += 1
    return cells


def _write_cell(grid, cell, splits, shared, target, main, task, classes, rng) -> None:
    dataset, model, strategy, lr, seed = cell
    lr_text = f"{lr:g}"
    run = Path(grid.run_dir(dataset, model, strategy, lr_text, seed))
    run.mkdir(parents=True, exist_ok=True)
    frames, metrics = [], {}
    for split, t in splits.items():
        noise = 0.8 * shared[(seed, split)] + 0.6 * rng.normal(size=t.signs.shape)
        scores = t.scores(t.mu_for(target), noise)
        metrics[split] = compute_metrics(task, t.y, scores, classes)
        frame = pd.DataFrame(scores, columns=[f"prob_{k}" for k in classes])
        if task == "multilabel":
            for j, k in enumerate(classes):
                frame.insert(j, f"target_{k}", t.y[:, j])
        else:
            frame.insert(0, "target", t.y)
        frame.insert(0, "group", [f"p{i // 2:06d}" for i in range(t.n)])
        frame.insert(0, "split", split)
        frame.insert(0, "id", [f"{dataset}-{split}-{i:06d}" for i in range(t.n)])
        frames.append(frame)
    pd.concat(frames).to_parquet(run / "predictions.parquet", index=False)
    val_main = metrics["val"][main]
    epochs = pd.DataFrame(
        {
            "epoch": range(EPOCHS),
            "train_loss": np.linspace(0.7, 0.2, EPOCHS),
            "val_loss": np.linspace(0.7, 0.4, EPOCHS),
            f"val_{main}": val_main - np.linspace(0.1, 0.0, EPOCHS),
            **{f"lr_group{i}": lr for i in range(block_count(model) + 1)},
            "may_stop": True,
            "seconds": 60.0,
        }
    )
    epochs.to_csv(run / "epochs.csv", index=False)
    log = Path(grid.results) / "logs" / "train" / dataset / model
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{strategy}_lr{lr_text}_seed{seed}.log").write_text(
        "".join(f"epoch {e}: val_{main} {v:.4f}\n" for e, v in enumerate(epochs[f"val_{main}"]))
    )
    summary = {
        "config": {"model": model, "strategy": strategy, "lr": lr, "seed": seed},
        "dataset": dataset,
        "task": task,
        "main_metric": main,
        "best_epoch": EPOCHS - 1,
        "epochs_trained": EPOCHS,
        "trainable_share": 1.0,
        "metrics": metrics,
        "model_provenance": _provenance(grid, model, dataset),
    }
    (run / "metrics.json").write_text(json.dumps(summary))


def _provenance(grid, model: str, dataset: str) -> dict:
    """What a torchvision model's run records (``medft.models.BuiltModel.provenance``)."""
    tag = grid.preprocess(model, dataset)
    return {
        "source": "torchvision",
        "preprocessing": {
            "resize": tag.resize,
            "crop": tag.crop,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "from": "torchvision's ImageNet weights",
        },
    }


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, the peak memory of the command's largest process (GB, sampled every
    0.2 s), and its output."""
    started = time.perf_counter()
    with open(REPO / "results" / ".rehearsal-output", "w+") as output:
        process = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT)
        watched, peak = psutil.Process(process.pid), 0
        while process.poll() is None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max([peak, *(p.memory_info().rss for p in tree if p.is_running())])
            except psutil.Error:
                pass
            time.sleep(0.2)
        output.seek(0)
        text = output.read()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{text[-3000:]}")
    return time.perf_counter() - started, peak / 1e9, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="results/scale")
    parser.add_argument("--out", default=str(HERE / "results_scale.md"))
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    folder = REPO / args.folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    configfile = folder / "rehearsal.yaml"
    configfile.write_text(f"results: {args.folder}\ndata: {args.folder}/data\nname: rehearsal\n")
    grid = Grid(load_config([configfile], workdir=REPO))
    os.chdir(REPO)
    started = time.perf_counter()
    cells = write_grid(grid, pd.read_csv(REPO / "reference" / "paper_tables_3_10.csv"))
    written_s = time.perf_counter() - started
    lines = [f"# The path after training at the paper's size ({time.strftime('%Y-%m-%d')})", ""]
    lines.append(
        f"Written by `bench/scale_rehearsal.py` on {os.cpu_count()} cores, "
        f"`--cores {args.cores}`: {cells} cells of config.yaml's grid ({written_s:.0f} s to "
        f"write them, {folder_bytes(folder) / 1e9:.1f} GB without weights)."
    )
    common = ["--configfile", str(configfile), "--cores", str(args.cores), "--nolock"]
    seconds, peak, _ = timed(
        [str(SNAKEMAKE), *common, "--rerun-triggers", "mtime", "--quiet", "all"]
    )
    report = folder / "report.html"
    report_s, report_peak, _ = timed([str(SNAKEMAKE), *common, "--report", str(report)])
    status_s, _, status_out = timed([str(MEDFT), "status", "--configfile", str(configfile)])
    rules = _benchmarks(folder / "logs" / "benchmarks")
    lines += [
        "",
        "## The workflow's rules after training (`snakemake`, then `snakemake --report`)",
        "",
        rules.to_markdown(index=False, floatfmt=".1f"),
        "",
        f"- `snakemake` after training: **{seconds / 60:.1f} min** wall on {args.cores} "
        f"cores; the largest rule's peak memory {rules['peak GB'].max():.2f} GB.",
        f"- `snakemake --report`: {report_s / 60:.1f} min, peak {report_peak:.2f} GB; "
        f"report.html **{report.stat().st_size / 1e6:.0f} MB**.",
        f"- `medft status` on the {cells} cells: {status_s:.2f} s wall (a fresh process, "
        "imports included); it says: " + status_out.splitlines()[0],
    ]
    missing = _remove_some(grid, MISSING_SHARE)
    partial = folder / "partial"
    partial_s, partial_peak, partial_out = timed(
        [str(MEDFT), "report", args.folder, "--out", str(partial)]
    )
    lines += [
        "",
        f"## `medft report {args.folder}` with {len(missing)} cells ({MISSING_SHARE:.0%}) missing",
        "",
        f"{partial_s / 60:.1f} min, peak {partial_peak:.2f} GB; report.html "
        f"{(partial / 'report.html').stat().st_size / 1e6:.0f} MB; it printed: "
        + next(line for line in partial_out.splitlines() if line.startswith("incomplete")),
    ]
    for cell in missing:
        run = Path(grid.run_dir(*cell))
        (run / "metrics.json.removed").rename(run / "metrics.json")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _benchmarks(folder: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rows.append(
            {
                "rule": path.parent.name,
                "job": path.stem,
                "wall s": float(frame["s"].iloc[0]),
                "peak GB": float(frame["max_rss"].iloc[0]) / 1000,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values("wall s", ascending=False)


def _remove_some(grid: Grid, share: float) -> list[tuple]:
    rng = np.random.default_rng(1)
    cells = grid.cells()
    chosen = rng.choice(len(cells), round(share * len(cells)), replace=False)
    for i in chosen:  # set aside, put back when the rehearsal ends
        run = Path(grid.run_dir(*cells[i]))
        (run / "metrics.json").rename(run / "metrics.json.removed")
    return [cells[i] for i in chosen]


if __name__ == "__main__":
    main()

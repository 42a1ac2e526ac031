"""Post-hoc evaluations of a finished grid: WiSE interpolation reproduces its ends, the
corruptions are deterministic and severity 0 changes nothing, the probes find a known answer,
and each job writes derived runs the report reads like any strategy's."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medft.engine import train
from medft.post_hoc import POST_HOC, derived_rows
from medft.post_hoc.context import Job, derived_metrics_files
from medft.post_hoc.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from medft.post_hoc.probes import knn_scores
from medft.post_hoc.wise import interpolate
from medft.run_config import TrainConfig


@pytest.fixture(scope="module")
def finished_cells(tiny_datasets, tiny_weights, tmp_path_factory):
    """LP, FT and LP-FT of one (dataset, model, lr), two seeds, and the LP features file."""
    from medft import features

    root = tmp_path_factory.mktemp("grid")
    data = tiny_datasets["binary"]
    shared = features.extract(data, "test_resnet", tiny_weights, root / "features.pt")
    files = []
    for seed in (0, 1):
        for strategy in ("LP", "FT", "LP-FT"):
            out = root / strategy / "lr0.01" / f"seed{seed}"
            config = TrainConfig(
                data=str(data),
                model="test_resnet",
                weights=tiny_weights,
                strategy=strategy,
                lr=1e-2,
                seed=seed,
                epochs=2,
                patience=2,
                batch_size=16,
                workers=0,
                out=str(out),
                features=str(shared) if strategy == "LP" else None,
                init=str(root / "LP" / "lr0.01" / f"seed{seed}" / "best.pt")
                if strategy == "LP-FT"
                else None,
            )
            train(config)
            files.append(str(out / "metrics.json"))
    return root, files, str(shared)


def run_job(name, finished, tmp_path, **overrides) -> dict:
    root, files, shared = finished
    info = POST_HOC.get(name)
    folder = tmp_path / name
    folder.mkdir()
    job = Job(
        files,
        str(folder),
        str(tmp_path / f"{name}.json"),
        info.rows_for(["LP", "FT", "LP-FT"]),
        features=shared if info.reads_features else None,
        **overrides,
    )
    info.run(job)
    return json.loads((tmp_path / f"{name}.json").read_text())


def metrics_of(path) -> dict:
    return json.loads(open(path).read())["metrics"]


def test_interpolation_is_the_ends_at_0_and_1_and_keeps_counters():
    start = {"w": torch.zeros(3), "n": torch.tensor(4)}
    end = {"w": torch.ones(3), "n": torch.tensor(9)}
    assert torch.equal(interpolate(start, end, 0.0)["w"], start["w"])
    assert torch.equal(interpolate(start, end, 1.0)["w"], end["w"])
    assert torch.allclose(interpolate(start, end, 0.3)["w"], torch.full((3,), 0.3))
    assert interpolate(start, end, 0.3)["n"].item() == 9
    with pytest.raises(ValueError, match="not of the same network"):
        interpolate(start, {"w": end["w"]}, 0.5)


def test_wise_at_0_and_1_reproduces_the_lp_and_ft_runs_exactly(finished_cells, tmp_path):
    root, _, _ = finished_cells
    index = run_job("wise", finished_cells, tmp_path)
    curve = pd.read_parquet(index["tables"]["curve"])
    for row, end in (("WiSE(LP, FT)", "FT"), ("WiSE(LP, LP-FT)", "LP-FT")):
        for seed in (0, 1):
            for alpha, strategy in ((0.0, "LP"), (1.0, end)):
                recorded = metrics_of(root / strategy / "lr0.01" / f"seed{seed}" / "metrics.json")
                for split in ("val", "test"):
                    at = curve[
                        (curve["row"] == row)
                        & (curve["seed"] == seed)
                        & (curve["alpha"] == alpha)
                        & (curve["split"] == split)
                    ]
                    assert at["value"].item() == recorded[split]["auroc"], (row, alpha, split)
    derived = [json.loads(open(p).read()) for p in index["runs"]]
    assert sorted(d["config"]["strategy"] for d in derived) == sorted(
        ["WiSE(LP, FT)"] * 2 + ["WiSE(LP, LP-FT)"] * 2
    )
    # The chosen α is the selection split's best interior point of its seed's curve: never an
    # end, which is a row of its own and was selected on that split.
    for d in derived:
        seed_curve = curve[
            (curve["row"] == d["config"]["strategy"])
            & (curve["seed"] == d["config"]["seed"])
            & (curve["split"] == "val")
        ]
        interior = seed_curve[(seed_curve["alpha"] > 0) & (seed_curve["alpha"] < 1)]
        assert 0 < d["post_hoc"]["alpha"] < 1
        assert d["metrics"]["val"]["auroc"] == interior["value"].max()
        assert d["post_hoc"]["alpha"] in set(interior["alpha"])


def test_a_corruption_at_severity_0_is_the_identity_and_otherwise_deterministic():
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=generator)
    for corruption in CORRUPTIONS:
        assert torch.equal(corrupt(pixels, corruption, 0, seed=7), pixels)
        changed = [corrupt(pixels, corruption, s, seed=7) for s in range(1, 6)]
        assert all(c.dtype == torch.uint8 and c.shape == pixels.shape for c in changed)
        assert all(not torch.equal(c, pixels) for c in changed), corruption
        assert torch.equal(corrupt(pixels, corruption, 3, seed=7), changed[2])
        # Worse with severity: the mean absolute change grows.
        change = [(c.float() - pixels.float()).abs().mean().item() for c in changed]
        assert change[-1] > change[0], (corruption, change)
    assert len(SEVERITIES["jpeg"]) == 5
    noisy = corrupt(pixels, "gaussian_noise", 2, seed=8)
    assert not torch.equal(noisy, corrupt(pixels, "gaussian_noise", 2, seed=7))
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(pixels, "fog", 1, seed=0)


def test_robustness_severity_0_is_the_runs_own_metric(finished_cells, tmp_path):
    from medft.report.post_hoc import robustness

    root, _, _ = finished_cells
    index = run_job("robustness", finished_cells, tmp_path)
    frame = pd.read_parquet(index["tables"]["robustness"])
    assert index["runs"] == []
    clean = frame[frame["severity"] == 0].set_index(["strategy", "seed"])["value"]
    for (strategy, seed), value in clean.items():
        recorded = metrics_of(root / strategy / "lr0.01" / f"seed{seed}" / "metrics.json")
        assert value == recorded["test"]["auroc"]
    assert len(frame) == 3 * 2 * (1 + 4 * 5)
    # Each pass's kept scores are what its value was computed from, image by image.
    scores = pd.read_parquet(index["tables"]["robustness_scores"])
    passes = scores.groupby(["strategy", "seed", "corruption", "severity"])
    assert len(passes) == len(frame)
    values = frame.set_index(["strategy", "seed", "corruption", "severity"])["value"]
    for key, part in passes:
        assert values[key] == pytest.approx(roc_auc_score(part["target"], part.iloc[:, 5]))
    table = robustness(frame, margin=1.0, scores=scores, task="binary", n_boot=200)
    assert set(table["strategy"]) == {"FT", "LP", "LP-FT"}
    assert table.loc[table["strategy"] == "FT", "verdict"].item() == "reference"
    assert table["relative drop %"].is_monotonic_increasing


def _robustness_runs(
    n_images: int, lead: float, rng, seeds: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Robustness tables of FT and LP over ``seeds`` seeds, one corruption: LP's scores separate
    the classes ``lead`` better than FT's on every seed, on the same ``n_images`` patients."""
    target = np.arange(n_images) % 2
    base = rng.normal(size=n_images)
    rows, scores = [], []
    for strategy, separation in (("FT", 1.0), ("LP", 1.0 + lead)):
        for seed in range(seeds):
            logit = base + separation * (target - 0.5) + rng.normal(0, 0.05, n_images)
            probability = 1 / (1 + np.exp(-logit))
            run_dir = f"runs/{strategy}/seed{seed}"
            cell = {"dataset": "d", "model": "m", "strategy": strategy, "seed": seed}
            for severity in (0, 1):
                part = pd.DataFrame(
                    {
                        "id": [f"i{k:03d}" for k in range(n_images)],
                        "group": [f"p{k:03d}" for k in range(n_images)],
                        "target": target,
                        "prob_0": 1 - probability,
                        "prob_1": probability,
                    }
                )
                value = roc_auc_score(target, probability)
                rows.append(
                    {
                        **cell,
                        "run_dir": run_dir,
                        "corruption": "jpeg",
                        "severity": severity,
                        "value": value,
                    }
                )
                scores.append(
                    part.assign(**cell, run_dir=run_dir, corruption="jpeg", severity=severity)
                )
    frame = pd.DataFrame(rows).assign(main_metric="auroc")
    return frame, pd.concat(scores, ignore_index=True)


def test_robustness_verdicts_count_the_evaluated_images_sampling():
    """Three seeds that agree to the decimal make a seeds-only *better* of a lead that 30
    images cannot resolve; resampling the images' patients makes it inconclusive, while the
    same lead on 3,000 images stays *better*."""
    from medft.report.post_hoc import robustness

    few, few_scores = _robustness_runs(30, 0.6, np.random.default_rng(0))
    lp = lambda table: table.set_index("strategy").loc["LP"]  # noqa: E731
    assert lp(robustness(few, margin=1.0))["verdict"] == "better"
    counted = lp(robustness(few, 1.0, few_scores, "binary", n_boot=500))
    assert counted["verdict"] == "inconclusive"
    assert counted["high"] - counted["low"] > 10
    assert counted["seeds"] == 3
    many, many_scores = _robustness_runs(3000, 0.6, np.random.default_rng(0))
    assert lp(robustness(many, 1.0, many_scores, "binary", n_boot=500))["verdict"] == "better"


def test_robustness_of_checkpoints_the_evaluation_split_chose_is_not_tested():
    from medft.report.post_hoc import robustness

    many, many_scores = _robustness_runs(3000, 0.6, np.random.default_rng(0))
    chosen = robustness(
        many, 1.0, many_scores, "binary", n_boot=200, chosen_on_evaluation="each run's epoch"
    ).set_index("strategy")
    assert chosen.loc["LP", "verdict"] == "not tested"
    assert np.isnan(chosen.loc["LP", "p_holm"])


def _markdown_cell(path: Path, strategy: str, column: str) -> str:
    """The cell of a markdown table under ``column``, in ``strategy``'s row."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")]
    header, *rows = ([cell.strip() for cell in line.strip("|").split("|")] for line in lines)
    row = next(row for row in rows if row[header.index("strategy")] == strategy)
    return row[header.index(column)]


def test_the_robustness_artefact_shows_the_seed_pairs_each_verdict_stands_on(tmp_path):
    """The report's robustness table, from the tables the job writes: its seeds column."""
    from medft.report.artefacts import dataset_artefacts
    from medft.report.evidence import Evidence

    seeds = 3
    frame, scores = _robustness_runs(60, 0.6, np.random.default_rng(1), seeds=seeds)
    model_dir = tmp_path / "results" / "d" / "m"
    # runs/<strategy>/seed<n> → the workflow's <model>/<strategy>/lr<lr>/seed<n>
    where = {
        d: str(model_dir / d.split("/")[1] / "lr0.001" / d.split("/")[2]) for d in frame["run_dir"]
    }
    frame["run_dir"], scores["run_dir"] = frame["run_dir"].map(where), scores["run_dir"].map(where)
    tables = model_dir / "post_hoc" / "robustness"  # medft.post_hoc.folder
    tables.mkdir(parents=True)
    frame.to_parquet(tables / "robustness.parquet")
    scores.to_parquet(tables / "robustness_scores.parquet")
    for run_dir, part in scores[scores["severity"] == 0].groupby("run_dir"):
        Path(run_dir).mkdir(parents=True)
        predictions = part[["id", "group", "target", "prob_0", "prob_1"]].assign(split="test")
        predictions.to_parquet(Path(run_dir) / "predictions.parquet")
    clean = frame[frame["severity"] == 0]
    runs = clean[["dataset", "model", "strategy", "seed", "run_dir"]].assign(
        lr=1e-3,
        task="binary",
        main_metric="auroc",
        val_auroc=clean["value"],
        test_auroc=clean["value"],
    )
    dataset_artefacts(Evidence.from_runs(runs), tmp_path / "report")
    assert _markdown_cell(tmp_path / "report" / "robustness.md", "LP", "seeds") == str(seeds)
    written = pd.read_csv(tmp_path / "report" / "robustness.csv").set_index("strategy")
    assert written.loc["LP", "seeds"] == seeds and pd.isna(written.loc["FT", "seeds"])


def test_robustness_refuses_passes_of_different_images_naming_the_pass():
    from medft.report.post_hoc import robustness

    frame, scores = _robustness_runs(30, 0.6, np.random.default_rng(0))
    late = (scores["run_dir"] == "runs/LP/seed2") & (scores["severity"] == 1)
    scores.loc[late & (scores["id"] == "i029"), "id"] = "i999"
    with pytest.raises(ValueError, match=r"runs/LP/seed2 \(jpeg, severity 1\): not scored on"):
        robustness(frame, 1.0, scores, "binary", n_boot=50)


def test_robustness_on_fewer_images_scores_clean_and_corrupted_on_the_same_rows(
    finished_cells, tmp_path
):
    from sklearn.metrics import roc_auc_score

    from medft.post_hoc.robustness import evenly_spaced

    root, _, _ = finished_cells

    def test_predictions(strategy, seed):
        run = root / strategy / "lr0.01" / f"seed{seed}" / "predictions.parquet"
        return pd.read_parquet(run).query("split == 'test'")

    images = len(test_predictions("FT", 0)) - 3
    index = run_job("robustness", finished_cells, tmp_path, severities=(3,), images=images)
    frame = pd.read_parquet(index["tables"]["robustness"])
    assert set(frame["images"]) == {images}
    assert len(frame) == 3 * 2 * (1 + 4)
    clean = frame[frame["severity"] == 0].set_index(["strategy", "seed"])["value"]
    for (strategy, seed), value in clean.items():
        test = test_predictions(strategy, seed)
        kept = test.iloc[evenly_spaced(len(test), images)]
        assert len(kept) == images and kept["target"].nunique() == 2
        assert value == pytest.approx(roc_auc_score(kept["target"], kept.iloc[:, -1]))
    assert evenly_spaced(31, 10).tolist() == [0, 3, 7, 10, 13, 17, 20, 23, 27, 30]
    assert evenly_spaced(31, 40) is None and evenly_spaced(31, None) is None


def test_knn_scores_are_the_neighbours_share_by_cosine():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    onehot = np.eye(2)[[0, 0, 1, 1]]
    query = np.array([[10.0, 0.5], [0.2, 3.0]])  # cosine ignores the length
    assert np.array_equal(knn_scores(train, onehot, query, k=2), [[1, 0], [0, 1]])
    assert np.allclose(knn_scores(train, onehot, query, k=3)[0], [2 / 3, 1 / 3])


def test_probes_write_a_derived_run_per_seed_with_k_and_c_chosen(finished_cells, tmp_path):
    index = run_job("probes", finished_cells, tmp_path)
    derived = [json.loads(open(p).read()) for p in index["runs"]]
    assert sorted((d["config"]["strategy"], d["config"]["seed"]) for d in derived) == [
        ("LogReg", 0),
        ("LogReg", 1),
        ("kNN", 0),
        ("kNN", 1),
    ]
    knn = next(d for d in derived if d["config"]["strategy"] == "kNN")
    tried = knn["post_hoc"]["tried"]
    assert knn["post_hoc"]["k"] == max(map(int, tried), key=lambda k: tried[str(k)])
    assert set(knn["metrics"]) == {"val", "test"}
    assert derived_metrics_files([str(tmp_path / "probes.json")]) == index["runs"]


def test_derived_rows_follow_the_grids_strategies():
    config = {"post_hoc": ["probes", "wise", "robustness"], "strategies": ["FT", "LP"]}
    assert derived_rows(config) == ["kNN", "LogReg", "WiSE(LP, FT)"]
    assert derived_rows({**config, "strategies": ["FT", "L2-SP"]}) == ["kNN", "LogReg"]
    with_lpft = {**config, "strategies": ["FT", "LP", "LP-FT"]}
    assert derived_rows(with_lpft)[2:] == ["WiSE(LP, FT)", "WiSE(LP, LP-FT)"]
    # LP-FT in one run does not start from the LP cell: nothing to interpolate it with.
    one_run = {**with_lpft, "strategy_options": {"lpft_lp_epochs": 3}}
    assert derived_rows(one_run)[2:] == ["WiSE(LP, FT)"]

"""Running where users run: what each job asks the scheduler for, the grid's cost before it
runs, the SLURM profile's requests, and the warm worker kept out of scheduler jobs."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from medft import cost
from medft.data import synthetic
from medft.data.preprocess import Preprocess
from medft.data.sources import SOURCES, parse_options
from medft.packing import pack_group, pack_size
from medft.workflow import Grid, load_config

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.fixture(scope="module")
def paper_grid() -> Grid:
    return Grid(load_config([], workdir=REPO))


def cell(dataset, model, strategy="FT"):
    return SimpleNamespace(dataset=dataset, model=model, strategy=strategy)


def test_config_yaml_repeats_the_packaged_cost_table():
    table = yaml.safe_load((REPO / "config.yaml").read_text())["cost"]
    assert {n: cost.ModelCost(**e) for n, e in table["models"].items()} == cost.DEFAULT_MODELS
    defaults = cost.CostSettings()
    assert {k: v for k, v in table.items() if k != "models"} == {
        "typical_epochs": defaults.typical_epochs,
        "startup_s": defaults.startup_s,
        "runtime_margin": defaults.runtime_margin,
        "max_runtime_min": defaults.max_runtime_min,
    }


def test_train_requests_grow_with_the_model_and_the_dataset(paper_grid):
    vgg_chexpert = paper_grid.cost.runtime_min("train", cell("chexpert", "vgg19"))
    resnet_chexpert = paper_grid.cost.runtime_min("train", cell("chexpert", "resnet50"))
    resnet_isic = paper_grid.cost.runtime_min("train", cell("isic2020", "resnet50"))
    assert vgg_chexpert > resnet_chexpert > resnet_isic
    # ResNet-50 on CheXpert: 58,086 training + 6,454 validation images per epoch at 2470 and
    # 7400 img/s, 50 epochs, start-up 120 s, then 6,654 images evaluated; margin 2.
    seconds = 50 * (58086 / 2470 + 6454 / 7400) + 120 + (6454 + 200) / 7400
    assert resnet_chexpert == pytest.approx(seconds * 2 / 60, abs=1)
    assert paper_grid.cost.mem_mb("train", cell("chexpert", "vgg19"), 1) > paper_grid.cost.mem_mb(
        "train", cell("chexpert", "resnet50"), 1
    )


def test_time_limits_stay_within_a_day_and_memory_rises_on_retry(paper_grid):
    huge = Grid({**paper_grid.config, "epochs": 5000})
    assert huge.cost.runtime_min("train", cell("chexpert", "vgg19")) == 1440
    first = paper_grid.cost.mem_mb("train", cell("bach", "resnet50"), 1)
    assert paper_grid.cost.mem_mb("train", cell("bach", "resnet50"), 2) == first * 1.5
    assert paper_grid.cost.mem_mb("train", cell("bach", "resnet50"), 3) == first * 2


def test_lp_on_shared_features_costs_no_backbone_epochs(paper_grid):
    lp = paper_grid.cost.train("chexpert", "resnet50", "LP")
    ft = paper_grid.cost.train("chexpert", "resnet50", "FT")
    features = paper_grid.cost.features("chexpert", "resnet50")
    assert lp.upper_s == lp.typical_s < ft.typical_s < ft.upper_s
    # One forward pass over every image, not a training run.
    assert features.upper_s == pytest.approx((58086 + 6454 + 200) / 7400 + 120)
    # The features file (64,740 x 2048 float32) is held in memory on top of the job's own.
    assert features.mem_mb == 12000 + 506
    no_cache = Grid({**paper_grid.config, "strategy_options": {"lp_feature_cache": False}})
    assert no_cache.cost.train("chexpert", "resnet50", "LP").upper_s > lp.upper_s


def test_counts_come_from_the_prepared_dataset_once_it_exists(tmp_path):
    config = {
        "results": str(tmp_path / "results"),
        "data": str(tmp_path / "data"),
        "datasets": [{"name": "nodule", "source": "synthetic", "task": "synth-nodule"}],
        "models": ["test_resnet"],
        "image_size": {"resize": 32, "crop": 32},
        "epochs": 10,
        "strategies": ["FT"],
    }
    grid = Grid(config)
    assert grid.cost.counts("nodule", "test_resnet") == (
        {"train": 180, "val": 60, "test": 60},
        "documented",
    )
    capped = {**config["datasets"][0], "max_images_per_class": 20}
    assert Grid({**config, "datasets": [capped]}).cost.counts("nodule", "test_resnet") == (
        {"train": 40, "val": 40, "test": 40},
        "documented + max_images_per_class",
    )
    prepared = Path(grid.prepared("nodule", "test_resnet")).parent
    synthetic.prepare("synth-nodule", Preprocess(32, 32), prepared, n_images=300)
    counts, origin = Grid(config).cost.counts("nodule", "test_resnet")
    assert origin == "prepared" and sum(counts.values()) == 300
    assert counts == yaml.safe_load((prepared / "meta.json").read_text())["split_counts"]


def test_users_table_is_counted_before_preparation(tmp_path):
    rows = ["path,label,split"] + [
        f"img{i}.png,{'ab'[i % 2]},{'test' if i < 5 else ''}" for i in range(40)
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    entry = {
        "name": "mine",
        "source": "table",
        "table": str(tmp_path / "labels.csv"),
        "split_column": "split",
    }
    # 5 given test images; the other 35 lose 10 % to validation.
    assert SOURCES.get("table").counts(parse_options(entry)) == {"train": 31, "val": 4, "test": 5}
    # Without a split column, 20 % go to the test split first.
    del entry["split_column"]
    assert SOURCES.get("table").counts(parse_options(entry)) == {"train": 29, "val": 3, "test": 8}


def medft_plan(monkeypatch, capsys, *configfiles: str) -> str:
    """What `medft plan [--configfile ...]` prints in the checkout."""
    from medft.cli import main

    monkeypatch.chdir(REPO)
    assert main(["plan", *(["--configfile", *configfiles] if configfiles else [])]) == 0
    return capsys.readouterr().out


def gpu_table(out: str) -> list[dict[str, str]]:
    """The rows of `medft plan`'s first table, GPU-hours (the disk's table follows), by
    column name."""
    lines = [line for line in out.split("\n\n")[0].splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.split("|")), strict=True)) for line in lines[2:]
    ]


def test_plan_prints_the_paper_grids_gpu_hours(monkeypatch, capsys):
    out = medft_plan(monkeypatch, capsys)
    rows = gpu_table(out)
    total = next(r for r in rows if r["dataset"] == "total")
    assert int(total["jobs"]) == 1728 + 24  # the training cells and one features job per pair
    upper, typical = float(total["GPU-h upper bound"]), float(total["GPU-h typical"])
    assert 0 < typical < upper
    per_pair = [r for r in rows if r["dataset"] != "total"]
    assert len(per_pair) == 24
    assert sum(float(r["GPU-h upper bound"]) for r in per_pair) == pytest.approx(
        upper, abs=0.1 * 24
    )
    assert {r["speed from"] for r in per_pair} == {"published (config.yaml's cost table)"}


def test_plan_prices_the_post_hoc_evaluations_by_their_image_passes(tmp_path, monkeypatch):
    from medft.workflow import Grid, load_config

    extra = tmp_path / "post_hoc.yaml"
    extra.write_text("post_hoc: [robustness, wise]\n")
    grid = Grid(load_config(["config.yaml", str(extra)], workdir=REPO))
    cost = grid.cost
    counts, _ = cost.counts("chexpert", "resnet50")
    startup = cost.settings.startup_s
    robustness = cost.post_hoc("chexpert", "resnet50", "robustness").upper_s - startup
    wise = cost.post_hoc("chexpert", "resnet50", "wise").upper_s - startup
    # 8 strategies × 3 seeds × 21 passes over the test split; 2 WiSE rows × 3 lrs × 3 seeds ×
    # 11 α over validation and test
    per_image = robustness / (8 * 3 * 21 * counts["test"])
    assert wise == pytest.approx(per_image * 2 * 3 * 3 * 11 * (counts["val"] + counts["test"]))
    assert cost.post_hoc("chexpert", "resnet50", "probes").upper_s == startup
    # Fewer severities and images cost what they evaluate: clean + 4 corruptions at 1 severity
    # on 100 images.
    extra.write_text("post_hoc: [robustness]\nrobustness_severities: [3]\nrobustness_images: 100\n")
    fewer = Grid(load_config(["config.yaml", str(extra)], workdir=REPO)).cost
    cut = fewer.post_hoc("chexpert", "resnet50", "robustness").upper_s - startup
    assert cut == pytest.approx(per_image * 8 * 3 * 5 * 100)


def test_a_dataset_with_its_own_lrs_has_its_own_cells_costs_and_arms(tmp_path):
    """`lrs:` on a dataset entry replaces the grid's for that dataset: its cells, its cost and
    disk in `medft plan`, its WiSE passes and its search arms; the source never sees it."""
    from medft.cost_plan import grid_seconds
    from medft.disk import disk_table

    nodule = {"source": "synthetic", "task": "synth-nodule", "n_images": 100}
    extra = tmp_path / "lrs.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "datasets": [{"name": "a", **nodule}, {"name": "b", **nodule, "lrs": [1e-4]}],
                "models": ["resnet50"],
                "post_hoc": ["wise"],
                "search": {"enabled": True},
            }
        )
    )
    grid = Grid(load_config(["config.yaml", str(extra)], workdir=REPO))
    assert {c[3] for c in grid.cells("a")} == {"0.001", "0.0001", "1e-05"}  # config.yaml's
    assert {c[3] for c in grid.cells("b")} == {"0.0001"}
    assert len(grid.cells("a")) == 3 * len(grid.cells("b")) == 3 * 8 * 3
    assert "lrs" not in grid.source_entry("b") and grid.dataset_options["b"].n_images == 100
    assert {lr for _, lr in grid.search_plan.arms("b")} == {"0.0001"}
    assert len(grid.search_plan.arms("a")) == 3 * len(grid.search_plan.arms("b"))
    features = 1  # LP's shared features: one job per (dataset, model), whatever the lrs
    jobs = {d: grid_seconds(grid.cost, d, "resnet50")[2] - features for d in ("a", "b")}
    assert jobs["a"] == 3 * jobs["b"] == 3 * 8 * 3
    startup = grid.cost.settings.startup_s
    wise = {d: grid.cost.post_hoc(d, "resnet50", "wise").upper_s - startup for d in ("a", "b")}
    assert wise["a"] == pytest.approx(3 * wise["b"])
    runs = disk_table(grid, in_flight=1).set_index("dataset")["runs"]
    assert runs["a"] == 3 * runs["b"] == 3 * 8 * 3
    extra.write_text(yaml.safe_dump({"datasets": [{"name": "b", **nodule, "lrs": [-1e-4]}]}))
    with pytest.raises(Exception, match="less than or equal to the minimum of 0"):
        load_config(["config.yaml", str(extra)], workdir=REPO)


@pytest.mark.slow
def test_slurm_profile_requests_gpus_only_for_train_and_features():
    """Acceptance: the paper's grid through profiles/slurm, as a dry run prints it."""
    result = subprocess.run(
        [str(SNAKEMAKE), "--profile", "profiles/slurm", "--dry-run", "--forceall", "--nolock"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # a packed cell's block is indented under its group job's line
    jobs = re.findall(r"^( *)rule (\w+):\n((?:\1    .*\n)+)", result.stdout, re.MULTILINE)
    requests = {}
    for _, rule, body in jobs:
        resources = dict(
            item.split("=", 1) for item in re.search(r"resources: (.*)", body).group(1).split(", ")
        )
        wildcards = re.search(r"wildcards: (.*)", body)
        requests.setdefault(rule, []).append((resources, wildcards and wildcards.group(1)))
    assert len(requests["train"]) == 1728 and len(requests["features"]) == 24
    # short cells packed (medft.packing): far fewer submissions than cells
    packs = re.findall(r"^\[.*\] Group job (pack\d+)", result.stdout, re.MULTILINE)
    packed = sum(1 for indent, rule, _ in jobs if rule == "train" and indent)
    # every cell of this grid is expected under pack_minutes (VGG-19 on CheXpert: ~16 min)
    assert packed == 1728 and 100 < len(packs) < 300
    for rule, jobs_of_rule in requests.items():
        for resources, _ in jobs_of_rule:
            assert resources.get("gpu") == ("1" if rule in ("train", "features") else None), rule
            assert int(resources["runtime"]) <= 24 * 60
    ft = {
        w: (int(r["mem_mb"]), int(r["runtime"]))
        for r, w in requests["train"]
        if "strategy=FT," in w and "seed=0" in w and "lr=0.001" in w
    }
    by_model = {w.split("model=")[1].split(",")[0]: v for w, v in ft.items() if "chexpert" in w}
    by_dataset = {w.split(",")[0]: v[1] for w, v in ft.items() if "model=resnet50" in w}
    assert len(set(by_model.values())) == 3
    assert len(set(by_dataset.values())) > 1


@pytest.mark.slow
def test_post_hoc_jobs_take_the_gpu_partition_with_small_time_limits():
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--profile",
            "profiles/slurm",
            "--dry-run",
            "--forceall",
            "--nolock",
            "--config",
            "post_hoc=all",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "MEDFT_GPU_PARTITION": "gpu-short",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    bodies = re.findall(r"^rule post_hoc:\n((?:    .*\n)+)", result.stdout, re.MULTILINE)
    assert len(bodies) == 8 * 3 * 3  # (dataset, model) × probes, wise, robustness
    for body in bodies:
        resources = dict(
            item.split("=", 1) for item in re.search(r"resources: (.*)", body).group(1).split(", ")
        )
        assert resources["gpu"] == "1" and resources["slurm_partition"] == "gpu-short"
        assert 10 <= int(resources["runtime"]) <= 6 * 60, body


def test_warm_worker_is_not_used_inside_a_scheduler_job(tmp_path, monkeypatch):
    from medft import jobs, warm

    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setattr(warm, "run_in_worker", lambda *a: pytest.fail("warm worker used"))
    ran = []
    monkeypatch.setitem(jobs.TORCH_JOBS, "train", lambda **kwargs: ran.append(kwargs))
    log = tmp_path / "job.log"
    warm.run_torch_job("train", {"run": {}}, 1, str(log), warm=True)
    assert ran == [{"run": {}}]
    assert "warm worker not used" in log.read_text() and "SLURM_JOB_ID=4242" in log.read_text()


def test_a_torch_job_holds_every_thread_pool_to_its_threads(monkeypatch):
    """torch's, numpy's BLAS, the OpenMP runtimes' and Arrow's: each would otherwise start a
    thread per CPU in a job the scheduler counted as one thread."""
    import numpy  # noqa: F401  (its BLAS is one of the pools)
    import pyarrow
    import torch
    from threadpoolctl import threadpool_info

    from medft import jobs

    if all(pool["num_threads"] == 1 for pool in threadpool_info()) and pyarrow.cpu_count() == 1:
        pytest.skip("every thread pool already has one thread: nothing to hold back")
    seen = []

    def probe(**kwargs):
        pools = {pool["num_threads"] for pool in threadpool_info()}
        seen.append((torch.get_num_threads(), pools, pyarrow.cpu_count()))

    monkeypatch.setitem(jobs.TORCH_JOBS, "probe", probe)
    before = torch.get_num_threads(), {p["num_threads"] for p in threadpool_info()}
    before += (pyarrow.cpu_count(),)
    jobs.run_torch_job_here("probe", {}, threads=1)
    assert seen == [(1, {1}, 1)]
    # and back afterwards: the process may go on (the CLI's --threads, the tests after this)
    after = torch.get_num_threads(), {p["num_threads"] for p in threadpool_info()}
    assert after + (pyarrow.cpu_count(),) == before


def test_plan_prints_the_search_budget_beside_the_grids(tmp_path, monkeypatch, capsys):
    search = tmp_path / "search.yaml"
    search.write_text("search: {enabled: true}\n")
    out = medft_plan(monkeypatch, capsys, "config.yaml", str(search))
    pairs = [r for r in gpu_table(out) if r["dataset"] != "total"]
    assert len(pairs) == 24
    for row in pairs:
        # The defaults (η 5, first rung 1, 3 rungs): FT's 9 full runs, 21 first-rung jobs,
        # 5 at the last rung (the top fifth of 15, and one lr each of G-LF and G-FL), 1
        # finalist x 3 seeds and (were it LP-FT) its LP runs of 2 more seeds: the bound.
        assert int(row["search jobs"]) == 9 + 21 + 5 + 1 * 3 + 1 * 2
        assert 0 < float(row["search GPU-h upper bound"]) < float(row["GPU-h upper bound"])
        # FT 450 + LP 150 + rungs 18 + 25 + the finalist 44 + 200: 887 of 3,600 epochs.
        assert int(row["search epochs share"].rstrip("%")) == 25
        assert 0 < float(row["search GPU-h typical"]) <= float(row["search GPU-h upper bound"])
        assert 0 < int(row["search GPU-h share"].rstrip("%")) < 100
    assert "Search (`search:` η=5, first rung of 1 epoch(s), 3 rungs)" in out


@pytest.mark.parametrize(
    ("cell_minutes", "pack_minutes", "expected"),
    [
        (2.0, 30, 16),
        (4.0, 30, 8),
        (8.0, 30, 4),
        (16.4, 30, 2),
        (45.0, 30, 1),
        (0.1, 30, 32),
        (2.0, 0, 1),
    ],
)
def test_short_cells_are_packed_to_fill_about_pack_minutes(cell_minutes, pack_minutes, expected):
    assert pack_size(cell_minutes, pack_minutes) == expected


def test_the_paper_grid_packs_its_short_cells_and_leaves_none_alone_needlessly(paper_grid):
    groups = {
        (d, m, s): pack_group(paper_grid, cell(d, m, s)) for d, m, s, _, _ in paper_grid.cells()
    }
    bach = {g for (d, *_), g in groups.items() if d == "bach"}
    chexpert_vgg = {g for (d, m, *_), g in groups.items() if d == "chexpert" and m == "vgg19"}
    assert bach == {"pack16"} and "pack2" in chexpert_vgg
    no_packing = Grid({**paper_grid.config, "pack_minutes": 0})
    assert pack_group(no_packing, cell("bach", "resnet50")) is None


def test_plan_says_what_the_grids_seeds_can_decide(monkeypatch, capsys):
    """The paper's 3 seeds and 7 comparisons per (dataset, model); the demo's 9 (the probes
    join the family); a grid that compares nothing, has one seed, or chooses its runs on the
    evaluation split, says so."""
    from medft.cost_plan import seeds_note
    from medft.report.verdicts import detectable_difference

    paper = medft_plan(monkeypatch, capsys)
    assert "Holm over the 7 comparisons" in paper
    assert f"| 3 (this grid) | {detectable_difference(3, 7):.1f} |" in " ".join(paper.split())
    demo = medft_plan(monkeypatch, capsys, "config/demo.yaml")
    assert "Holm over the 9 comparisons" in demo
    alone = seeds_note({"strategies": ["FT"], "seeds": [0, 1, 2], "post_hoc": []})
    assert "nothing is compared" in alone
    one_seed = seeds_note({"strategies": ["FT", "LP"], "seeds": [0], "post_hoc": []})
    assert "With 1 seed, nothing is tested" in one_seed and "| 1 " not in one_seed
    # The paper preset chooses its runs on the evaluation split: the report tests nothing.
    preset = " ".join(medft_plan(monkeypatch, capsys, "config/paper.yaml").split())
    assert "can decide: nothing. `select_lr_on: test` and `early_stop_on: test`" in preset

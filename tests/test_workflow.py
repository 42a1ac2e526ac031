"""The Snakemake workflow on a tiny config (timm's test_resnet, random weights): its config
check in-process; its real runs, signals and reports (marked slow) in CI's own step."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [
            str(SNAKEMAKE),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(workdir / "config.yaml"),
            "--cores",
            "2",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-3000:])
    return result


def write_user_data(workdir: Path) -> list[dict]:
    """Users' data as they bring it: an ImageFolder tree and a CSV table of PNG files."""
    from PIL import Image

    from medft.data import synthetic

    rows = []
    for i, (image, label, _, _) in enumerate(synthetic.generate("synth-nodule", 40, 48)):
        Image.fromarray(image).save(
            _mkdir(workdir / "folder" / ["clear", "nodule"][label]) / f"{i}.png"
        )
    for i, (image, labels, patient, _) in enumerate(synthetic.generate("synth-findings", 40, 48)):
        Image.fromarray(image).save(_mkdir(workdir / "table" / "png") / f"{i}.png")
        rows.append(
            {
                "file": f"png/{i}.png",
                "patient": patient,
                **dict(zip(["nodule", "streak", "cavity"], labels, strict=True)),
            }
        )
    pd.DataFrame(rows).to_csv(workdir / "table" / "labels.csv", index=False)
    return [
        {"name": "nodule", "source": "imagefolder", "root": "folder", "val_fraction": 0.2},
        {
            "name": "findings",
            "source": "table",
            "table": "table/labels.csv",
            "path_column": "file",
            "label_columns": ["nodule", "streak", "cavity"],
            "group_column": "patient",
            "val_fraction": 0.2,
        },
    ]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_config(workdir: Path, **overrides) -> None:
    config = {
        "results": "results",
        "data": "data",
        "datasets": [
            {"name": "nodule", "source": "synthetic", "task": "synth-nodule", "n_images": 40},
            {"name": "findings", "source": "synthetic", "task": "synth-findings", "n_images": 40},
        ],
        "models": ["test_resnet"],
        "weights": "none",
        "image_size": {"resize": 32, "crop": 32},
        "strategies": ["FT", "LP", "LP-FT"],
        "lrs": [1e-3],
        "seeds": [0],
        "batch_size": 16,
        "epochs": 1,
        "patience": 1,
        "train_threads": 1,
        "gpus_per_job": 0,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump({**config, **overrides}))


def planned_outputs(workdir: Path, *args: str) -> set[str]:
    """The files the dry run's jobs would write."""
    out = snakemake(workdir, "--dry-run", *args).stdout
    return {
        path.strip(",")
        for line in out.splitlines()
        if line.strip().startswith("output:")
        for path in line.split()[1:]
    }


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    out = snakemake(workdir, "--dry-run", "--quiet", "rules", *args).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


def dry_run_counts(configfile: str) -> dict[str, int]:
    """Jobs per rule that `snakemake --dry-run --forceall` plans for ``configfile``."""
    result = subprocess.run(
        [str(SNAKEMAKE), "--configfile", configfile, "--dry-run", "--forceall", "--nolock"]
        + ["--quiet", "rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        p[0]: int(p[1])
        for p in map(str.split, result.stdout.splitlines())
        if len(p) == 2 and p[1].isdigit()
    }


@pytest.mark.slow
def test_demo_dry_run_plans_exactly_the_grid():
    counts = dry_run_counts("config/demo.yaml")
    from medft.strategies import paper_strategy_names

    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    assert demo["strategies"] == "paper"
    expected = (
        len(demo["datasets"])
        * len(demo["models"])
        * len(paper_strategy_names())
        * len(demo["lrs"])
        * len(demo["seeds"])
    )
    assert counts["train"] == expected == 120
    assert counts["features"] == len(demo["datasets"]) * len(demo["models"]) == 3
    assert demo["post_hoc"] == ["probes", "robustness"]  # per (dataset, model)
    assert counts["post_hoc"] == 3 * 2


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs util-linux's taskset")
def test_make_demo_runs_a_one_thread_job_per_cpu_it_may_use():
    """`make demo` sizes itself to the CPUs this process may use (taskset, a container's
    cpuset), and each of its jobs is one thread: jobs × threads never exceeds them."""
    available = sorted(os.sched_getaffinity(0))
    for cpus in {1, len(available)}:
        allowed = ",".join(map(str, available[:cpus]))
        plan = subprocess.run(
            ["taskset", "-c", allowed, "make", "-n", "demo"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"--configfile config/demo.yaml --cores {cpus} " in plan
    make = subprocess.run(
        ["make", "-n", "demo", "CORES=3"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "--cores 3 " in make.stdout  # still settable
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    assert demo["train_threads"] == 1 and demo["loader_workers"] == 0


def _cpu_quota_cgroup(name: str) -> tuple[Path, Path, str] | None:
    """A new cgroup allowed one CPU's time (cgroup v1 or v2): its directory, the hierarchy
    a container would see as its own, and the file that holds the quota's value."""
    v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
    if (v1 / "cpu.cfs_quota_us").exists():
        return v1 / name, v1, "cpu.cfs_quota_us=100000"
    if "cpu" in (v2 / "cgroup.subtree_control").read_text(errors="ignore").split():
        return v2 / name, v2, "cpu.max=100000 100000"
    return None


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a CPU quota needs root (a new cgroup) and util-linux's unshare",
)
def test_make_demo_keeps_to_a_containers_cpu_limit():
    """Docker's --cpus (a cgroup CPU quota) leaves every CPU in the affinity mask, so
    `nproc` counts them all; `make demo` must count the quota, as in a container: the process
    in a cgroup allowed one CPU's time, that cgroup mounted where the container sees its own."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one CPU: a one-CPU quota would change nothing to see")
    found = _cpu_quota_cgroup(f"medft-test-{os.getpid()}")
    if found is None:
        pytest.skip("no writable cgroup CPU controller on this machine")
    group, hierarchy, setting = found
    knob, value = setting.split("=")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespace here (unshare -m needs CAP_SYS_ADMIN)")
    try:
        group.mkdir()
    except OSError as error:
        pytest.skip(f"cgroup hierarchy not writable here: {error}")
    try:
        (group / knob).write_text(value)
        inside = (
            f"mount --bind {group} {hierarchy} && echo $$ > {hierarchy}/cgroup.procs && "
            "nproc && make -n demo"
        )
        out = subprocess.run(
            ["unshare", "-m", "bash", "-c", inside],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        group.rmdir()
    assert int(out.splitlines()[0]) == len(os.sched_getaffinity(0))  # nproc does not see it
    assert "--configfile config/demo.yaml --cores 1 " in out


def test_datasets_run_in_the_order_the_config_lists_them():
    from medft.workflow import Grid

    grid = Grid(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()))
    order = [grid.priority(name) for name in grid.datasets]
    assert order == sorted(order, reverse=True) and len(set(order)) == len(order) == 3
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for rule in ("prepare", "features", "train", "post_hoc", "aggregate_dataset", "dataset_report"):
        body = rules.split(f"rule {rule}:")[1].split("\nrule ")[0]
        assert "priority: lambda w: grid.priority(w.dataset)" in body, rule


def test_lp_cells_share_features_unless_the_backbone_is_random():
    from medft.workflow import Grid

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    grid = Grid(config)
    shared = f"{config['results']}/isic2020/vgg19/features.pt"
    assert grid.features_file("isic2020", "vgg19", "LP") == shared
    assert grid.params.train("isic2020", "vgg19", "LP", "0.001", 2)["features"] == shared
    assert grid.features_file("isic2020", "vgg19", "LP-FT") is None  # it starts from LP's
    assert grid.features_file("isic2020", "vgg19", "FT") is None
    assert Grid({**config, "weights": "none"}).features_file("isic2020", "vgg19", "LP") is None
    no_cache = {**config, "strategy_options": {"lp_feature_cache": False}}
    assert Grid(no_cache).features_file("isic2020", "vgg19", "LP") is None


def config_error(workdir: Path) -> str:
    """The message with which the workflow's own config check (``validate_config``, what
    common.smk calls before any job) refuses ``workdir``'s config layered over config.yaml."""
    from medft.workflow import load_config

    with pytest.raises(Exception) as caught:
        load_config([workdir / "config.yaml"], workdir=REPO)
    return str(caught.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"strategies": ["FT", "SGD"]}, "strategies: unknown strategy 'SGD'; choose one of: FT"),
        ({"lrs": [1e-3, -1e-4]}, "-0.0001 is less than or equal to the minimum of 0"),
        (
            {"post_hoc": ["probe"]},
            "post_hoc: unknown post-hoc evaluation 'probe'; choose one of: probes, wise",
        ),
        ({"post_hoc": ["probes"]}, "post_hoc: `probes` read a pretrained backbone's features"),
    ],
)
def test_config_check_rejects_bad_values_naming_them(tmp_path, override, message):
    write_config(tmp_path, **override)
    assert message in config_error(tmp_path)


NODULE = {"name": "nodule", "source": "synthetic", "task": "synth-nodule", "n_images": 40}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"epoch": 1}, "unknown key `epoch` (did you mean `epochs`?)"),
        (
            {"datasets": [{**NODULE, "group_colum": "patient"}]},
            "dataset 'nodule' (source 'synthetic'): unknown key `group_colum`",
        ),
    ],
)
def test_config_check_names_a_misspelled_key(tmp_path, override, message):
    """A user config layered over config.yaml is refused, naming the key (duplicate names and
    unknown models go through the same check: test_bad_inputs)."""
    write_config(tmp_path, **override)
    assert message in config_error(tmp_path)


@pytest.mark.slow
def test_dry_run_refuses_a_bad_config_with_the_checks_message(tmp_path):
    """`snakemake -n` runs the same check (common.smk) and shows its message."""
    write_config(tmp_path, epoch=1)
    result = snakemake(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    assert "unknown key `epoch` (did you mean `epochs`?)" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def finished_workflow(tmp_path_factory, tiny_weights) -> Path:
    """Pretrained (local state-dict) weights, so LP cells read features the workflow shares."""
    workdir = tmp_path_factory.mktemp("workflow")
    write_config(workdir, datasets=write_user_data(workdir), weights=tiny_weights)
    snakemake(workdir)
    return workdir


@pytest.mark.slow
def test_imagefolder_and_table_run_to_tables_and_figures(finished_workflow):
    results = finished_workflow / "results"
    report = results / "report" / "config"  # keyed by the config file's name
    for dataset in ("nodule", "findings"):
        table = (report / dataset / "paper_table.md").read_text()
        assert all(s in table for s in ("| FT", "| LP", "| LP-FT"))
        assert "(–)" in table  # one seed: no standard error, never "0.00"
        assert (report / dataset / "paper_table.tex").read_text().count("\\toprule") == 1
        assert (report / dataset / "relative_improvement.png").stat().st_size > 1000
        assert (report / dataset / "relative_improvement.pdf").stat().st_size > 1000
        statistics = pd.read_csv(report / dataset / "statistics.csv")
        assert set(statistics["verdict"]) == {"not tested"}  # one seed
        runs = pd.read_parquet(report / dataset / "runs.parquet")
        assert len(runs) == 3 and set(runs["strategy"]) == {"FT", "LP", "LP-FT"}
        calibration = pd.read_csv(report / dataset / "calibration.csv")
        assert set(calibration["strategy"]) == {"FT", "LP", "LP-FT"}
        assert calibration[["ece_before", "ece_after", "temperature"]].notna().all().all()
        assert (report / dataset / "calibration.png").stat().st_size > 1000
    effectiveness = pd.read_csv(report / "summary" / "effectiveness.csv")
    assert set(effectiveness["strategy"]) == {"LP", "LP-FT", "Total"}
    assert (report / "summary" / "best_combination.md").exists()
    lp = json.loads((results / "nodule/test_resnet/LP/lr0.001/seed0/metrics.json").read_text())
    assert lp["config"]["features"] == "results/nodule/test_resnet/features.pt"
    assert (results / "nodule/test_resnet/features.pt").stat().st_size > 0


@pytest.mark.slow
def test_the_html_report_gathers_every_artefact(finished_workflow, tmp_path):
    snakemake(finished_workflow, "--report", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    for text in ("paper_table.html", "heatmap.png", "Across datasets", "nodule"):
        assert text in page


@pytest.mark.slow
def test_partial_report_names_a_failed_cell_and_all_stays_strict(finished_workflow):
    results = finished_workflow / "results"
    cell = results / "nodule" / "test_resnet" / "FT" / "lr0.001" / "seed0"
    (cell / "metrics.json").rename(cell / "metrics.json.aside")  # as a cell that failed
    try:
        snakemake(finished_workflow, "partial_report")
        folder = results / "partial_report" / "config"
        missing = pd.read_csv(folder / "nodule" / "missing_cells.csv")
        assert missing[["strategy", "seed"]].values.tolist() == [["FT", 0]]
        assert "incomplete, " in (folder / "report.html").read_text()
        assert "Incomplete: 1 cell(s)" in (folder / "nodule" / "paper_table.md").read_text()
        assert not (folder / "findings" / "missing_cells.csv").exists()
        # the default target stays strict: the dataset's report, to be remade, waits for
        # every cell (Snakemake leaves a finished report alone when a run's file goes)
        report = results / "report" / "config" / "nodule"
        remade = [report / "runs.parquet", report / "paper_table.md"]
        for path in remade:
            path.rename(path.with_name(path.name + ".aside"))
        try:
            assert planned_jobs(finished_workflow)["train"] == 1
        finally:
            for path in remade:
                path.with_name(path.name + ".aside").rename(path)
    finally:
        (cell / "metrics.json.aside").rename(cell / "metrics.json")


@pytest.mark.slow
def test_deleted_table_is_remade_alone(finished_workflow):
    results = finished_workflow / "results"
    report = results / "report" / "config"
    table = report / "nodule" / "paper_table.md"
    table.unlink()
    # the summary across datasets reads the dataset's report, so it follows
    assert planned_jobs(finished_workflow) == {
        "dataset_report": 1,
        "summary_report": 1,
        "all": 1,
    }
    others = [
        p
        for p in results.rglob("*")
        if p.is_file()
        and "logs" not in p.parts
        and p.parent not in (table.parent, report / "summary")
    ]
    before = {p: p.stat().st_mtime_ns for p in others}
    snakemake(finished_workflow)
    assert table.exists()
    assert {p: p.stat().st_mtime_ns for p in others} == before


@pytest.mark.slow
def test_a_second_config_writes_its_own_report(finished_workflow):
    second = finished_workflow / "second.yaml"
    second.write_text("strategies: [FT, LP]\n")
    plan = subprocess.run(
        [
            str(SNAKEMAKE),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(finished_workflow),
            "--configfile",
            str(finished_workflow / "config.yaml"),
            str(second),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "results/report/second/summary/effectiveness.csv" in plan
    assert "results/report/config/" not in plan


@pytest.mark.slow
def test_a_datasets_own_lrs_add_its_cells_and_prepare_nothing_again(finished_workflow):
    """`lrs:` on a dataset entry is the grid's, not the source's: giving nodule a second lr
    plans that lr's cells (and what reads them), never a new preparation of its data."""
    config = yaml.safe_load((finished_workflow / "config.yaml").read_text())
    nodule = next(d for d in config["datasets"] if d["name"] == "nodule")
    nodule["lrs"] = [1e-3, 1e-2]
    (finished_workflow / "lrs.yaml").write_text(yaml.safe_dump(config))
    plan = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory"]
        + [str(finished_workflow), "--configfile", str(finished_workflow / "lrs.yaml")]
        + ["--dry-run", "--quiet", "rules"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    jobs = dict(line.split() for line in plan.splitlines() if len(line.split()) == 2)
    assert "prepare" not in jobs
    assert jobs["train"] == "3"  # FT, LP and LP-FT at lr 0.01, one seed; findings untouched


@pytest.mark.slow
def test_changed_cell_reruns_only_what_depends_on_it(finished_workflow):
    """Re-training the LP cell changes the LP-FT cell's input: that cell and the reports of
    its dataset re-run, nothing of the other dataset does."""
    forcerun = ("--forcerun", "results/nodule/test_resnet/LP/lr0.001/seed0/metrics.json")
    assert planned_jobs(finished_workflow, *forcerun) == {
        "train": 2,
        "aggregate_dataset": 1,
        "dataset_report": 1,
        "summary_report": 1,
        "all": 1,
    }
    plan = snakemake(finished_workflow, "--dry-run", *forcerun).stdout
    # a dry run shows packed cells (medft.packing) indented under their group job
    found = re.findall(r"^( *)rule train:\n(?:\1    .*\n)*?\1    output: (\S+)", plan, re.M)
    trained = [output for _, output in found]
    assert sorted(trained) == [
        "results/nodule/test_resnet/LP-FT/lr0.001/seed0/metrics.json",
        "results/nodule/test_resnet/LP/lr0.001/seed0/metrics.json",
    ]


@pytest.mark.slow
def test_new_features_rerun_the_lp_cells_that_read_them(finished_workflow):
    forcerun = ("--forcerun", "results/findings/test_resnet/features.pt")
    assert planned_jobs(finished_workflow, *forcerun) == {
        "features": 1,
        "train": 2,  # LP reads the features, LP-FT starts from LP
        "aggregate_dataset": 1,
        "dataset_report": 1,
        "summary_report": 1,
        "all": 1,
    }


@pytest.mark.slow
def test_post_hoc_on_a_finished_grid_trains_nothing_and_joins_the_report(
    finished_workflow, tmp_path
):
    """Probes, WiSE and robustness added to a finished grid (a copy of it): only their jobs
    and the reports are planned; their rows and artefacts reach the tables."""
    import shutil

    workdir = tmp_path / "grid"
    shutil.copytree(finished_workflow, workdir, symlinks=True)
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["post_hoc"] = "all"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    assert planned_jobs(workdir) == {
        "post_hoc": 6,  # 2 datasets × (probes, wise, robustness)
        "aggregate_dataset": 2,
        "dataset_report": 2,
        "summary_report": 1,
        "all": 1,
    }
    report = workdir / "results" / "report" / "config"
    # One dataset's report is made (the other's jobs are the same): its three evaluations,
    # its runs table and its report; CI's demo shows the artefacts in Chromium.
    snakemake(workdir, "results/report/config/nodule/robustness.md")
    runs = pd.read_parquet(report / "nodule" / "runs.parquet")
    assert set(runs["strategy"]) == {
        "FT",
        "LP",
        "LP-FT",
        "kNN",
        "LogReg",
        "WiSE(LP, FT)",
        "WiSE(LP, LP-FT)",
    }
    table = (report / "nodule" / "paper_table.md").read_text()
    assert all(f"| {row}" in table for row in ("kNN", "LogReg", "WiSE(LP, FT)"))
    robustness = pd.read_csv(report / "nodule" / "robustness.csv")
    assert set(robustness["strategy"]) == {"FT", "LP", "LP-FT"}
    assert (report / "nodule" / "wise.png").stat().st_size > 1000
    assert "train" not in planned_jobs(workdir)


@pytest.mark.slow
@pytest.mark.parametrize("warm_worker", [False, True])
def test_sigterm_mid_run_resumes_from_the_last_epoch(tmp_path, warm_worker):
    write_config(
        tmp_path,
        datasets=[
            {"name": "nodule", "source": "synthetic", "task": "synth-nodule", "n_images": 400}
        ],
        strategies=["FT"],
        # Enough epochs left after the second for the signal to land mid-run; the resumed
        # run trains the rest, so no more.
        epochs=10,
        patience=10,
        warm_worker=warm_worker,
    )
    run_dir = tmp_path / "results" / "nodule" / "test_resnet" / "FT" / "lr0.001" / "seed0"
    TARGET = "results/nodule/test_resnet/FT/lr0.001/seed0/metrics.json"  # noqa: N806
    process = subprocess.Popen(
        [
            str(SNAKEMAKE),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--cores",
            "1",
            TARGET,
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        log = run_dir / "epochs.csv"
        if log.exists() and len(pd.read_csv(log)) >= 2:
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("training never reached epoch 2")
    # As a cluster does on pre-emption: SIGTERM to every process of the job.
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=180)  # a loaded 2-core CI machine shuts down slowly
    trained_before = len(pd.read_csv(run_dir / "epochs.csv"))
    assert not (run_dir / "metrics.json").exists()

    snakemake(tmp_path, "--rerun-incomplete", TARGET)
    epochs = pd.read_csv(run_dir / "epochs.csv")["epoch"].tolist()
    assert epochs == list(range(len(epochs))) and len(epochs) > trained_before
    log = next((tmp_path / "results" / "logs" / "train").rglob("*.log")).read_text()
    assert f"resuming {run_dir.relative_to(tmp_path)} after epoch" in log


def test_paper_preset_plans_the_same_grid_with_evaluation_split_selection():
    """Acceptance: config/paper.yaml plans the paper's 1,728 training jobs, selecting on the
    evaluation split without a validation split; config.yaml's sound protocol is unchanged."""
    from medft.workflow import Grid, load_config

    sound = Grid(load_config([], workdir=REPO))
    paper = Grid(load_config([REPO / "config" / "paper.yaml"], workdir=REPO))
    assert len(sound.cells()) == len(paper.cells()) == 1728
    assert (paper.config["early_stop_on"], paper.config["select_lr_on"]) == ("test", "test")
    assert all(o.val_fraction == 0 for o in paper.dataset_options.values())
    assert paper.report_plan.protocol().startswith(
        "Protocol: early stopping on test, lr chosen on test"
    )
    assert sound.report_plan.protocol().startswith(
        "Protocol: early stopping on val, lr chosen on val"
    )
    cell = ("cholect50", "resnet50", "LP-FT", "0.001", 0)
    assert paper.params.train(*cell)["early_stop_on"] == "test"
    assert "init" not in paper.params.train(*cell)  # one-run LP-FT: no LP cell to wait for
    assert sound.params.train(*cell)["init"].endswith("/LP/lr0.001/seed0/best.pt")


@pytest.mark.slow
def test_search_runs_one_rung_at_a_time_and_resumes(tmp_path, tiny_weights):
    """`snakemake -n` plans the first rung only; after it, only the survivors; the rest of the
    search re-uses every epoch already trained and ends in a recommendation."""
    write_config(
        tmp_path,
        datasets=[
            {"name": "nodule", "source": "synthetic", "task": "synth-nodule", "n_images": 40}
        ],
        weights=tiny_weights,
        strategies=["FT", "LP", "LP-FT", "G-LF"],
        lrs=[1e-3, 1e-2],
        seeds=[0, 1],
        epochs=3,
        patience=3,
        search={"enabled": True, "eta": 2, "first_rung_epochs": 1, "rungs": 3},
        warm_worker=True,
    )
    first = planned_jobs(tmp_path)
    # Every searched arm's first rung (FT is not searched), the LP runs LP-FT starts from
    # (trained to the end first) and FT's full protocol, every lr and seed, from the start.
    assert first["search_rung"] == 6 and first["train"] == 2 + 2 * 2
    outputs = planned_outputs(tmp_path)
    assert any(o.endswith("rung0.json") for o in outputs)
    assert not any(o.endswith("rung1.json") for o in outputs)

    folder = tmp_path / "results" / "nodule" / "test_resnet"
    snakemake(tmp_path, "results/nodule/test_resnet/search/decision0.csv")
    decision = pd.read_csv(folder / "search" / "decision0.csv", dtype={"lr": str})
    kept = decision[decision["survives"]]
    # 4 comparable arms keep 2; G-LF, not comparable after one epoch, keeps its best lr.
    assert len(kept) == 3 and (kept["strategy"] == "G-LF").sum() == 1
    second = planned_jobs(tmp_path)
    assert second["search_rung"] == len(kept)
    outputs = planned_outputs(tmp_path)
    assert not any(o.endswith("rung0.json") for o in outputs)
    for arm in decision.itertuples():
        rung1 = f"results/nodule/test_resnet/{arm.strategy}/lr{arm.lr}/seed0/rung1.json"
        assert (rung1 in outputs) == arm.survives

    rest = snakemake(tmp_path)
    rest = rest.stdout + rest.stderr
    assert "rung=0" not in rest  # nothing of the first rung ran again
    for arm in kept.itertuples():
        log = pd.read_csv(folder / arm.strategy / f"lr{arm.lr}" / "seed0" / "epochs.csv")
        assert log["epoch"].tolist() == list(range(len(log)))  # no epoch trained twice
    recommendation = (folder / "recommendation.md").read_text()
    assert recommendation.startswith("# Recommendation: nodule · test_resnet")
    table = pd.read_csv(folder / "recommendation.csv")
    assert table["role"].iloc[0] == "recommended" and (table["n_seeds"] == 2).all()
    # FT's every lr is there, at the full protocol, as the reference.
    assert set(table.loc[table["strategy"] == "FT", "lr"].astype(str)) == {"0.001", "0.01"}
    assert "Nothing to be done" in snakemake(tmp_path, "--dry-run").stdout
    snakemake(tmp_path, "--report", str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    assert all(name in html for name in ("recommendation.md", "search_curves.png"))
    replay_equals_the_search(tmp_path, folder)


def replay_equals_the_search(workdir: Path, folder: Path) -> None:
    """The grid finished in the same folder (the search's seed-0 runs resume to the end):
    replaying the search on the grid's logs makes the search's own decisions."""
    from medft.report.collect import collect_runs
    from medft.search import replay
    from medft.search.rungs import SearchSettings

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["search"]["enabled"] = False
    (workdir / "grid.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--configfile", str(workdir / "grid.yaml"))
    files = sorted(folder.glob("*/lr*/seed*/metrics.json"))
    runs = collect_runs(files)
    runs["lr"] = [f.parent.parent.name.removeprefix("lr") for f in files]
    runs["select"], runs["test"] = runs["val_auroc"], runs["test_auroc"]
    runs["diverged"] = runs["diverged_epoch"].notna()
    logs = []
    for f, row in zip(files, runs.itertuples(), strict=True):
        log = pd.read_csv(f.parent / "epochs.csv")
        logs.append(
            log.assign(strategy=row.strategy, lr=row.lr, seed=row.seed, score=log["val_auroc"])
        )
    # The config's order: ties go to the arm listed first, in the search and in the replay.
    rank = {s: i for i, s in enumerate(config["strategies"])}
    lrs = {f"{lr:g}": i for i, lr in enumerate(config["lrs"])}
    runs = runs.sort_values(["strategy", "lr", "seed"], key=lambda c: c.map({**rank, **lrs}))
    settings = SearchSettings(**{k: v for k, v in config["search"].items() if k != "enabled"})
    outcome = replay.search(replay.Grid(pd.concat(logs), runs), settings, config["epochs"])
    for k, replayed in enumerate(outcome.decisions):
        real = pd.read_csv(folder / "search" / f"decision{k}.csv", dtype={"lr": str})
        columns = ["strategy", "lr", "epochs", "survives"]
        replayed = replayed.sort_values(["strategy", "lr"]).reset_index(drop=True)
        real = real.sort_values(["strategy", "lr"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(replayed[columns], real[columns], check_dtype=False)
        assert np.allclose(replayed["score"], real["score"], equal_nan=True)


@pytest.mark.slow
def test_the_foundation_config_plans_its_grid_offline():
    """config/foundation.yaml: the paper's strategies plus LoRA on three foundation backbones,
    planned without their weights (the registry carries what planning needs)."""
    counts = dry_run_counts("config/foundation.yaml")
    config = yaml.safe_load((REPO / "config" / "foundation.yaml").read_text())
    assert "LoRA" in config["strategies"]
    expected = len(config["models"]) * len(config["strategies"]) * 3 * 3
    assert counts["train"] == expected == 243

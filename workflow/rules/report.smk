# Tables and figures take seconds: on a cluster they run on the submitting host (localrules),
# not in a queue, and never hold a GPU node's slot. Each writes its wall time and peak memory
# to logs/benchmarks/ (bench/results_scale.md measured them at the paper's size). Every artefact is flagged report(), so
# `snakemake --report report.html` gathers them into one self-contained page.
localrules:
    aggregate_dataset,
    partial_report,
    dataset_report,
    summary_report,


rule aggregate_dataset:
    """Every run of one dataset: final metrics and per-epoch logs, one Parquet each; the
    post-hoc evaluations' derived runs (probes, WiSE) join the runs."""
    input:
        lambda w: grid.metrics_files(w.dataset) + grid.post_hoc_plan.indexes(w.dataset),
    output:
        runs=f"{REPORT}/{{dataset}}/runs.parquet",
        epochs=f"{REPORT}/{{dataset}}/epochs.parquet",
    log:
        f"{LOGS}/aggregate/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/aggregate_dataset/{{dataset}}.tsv"
    priority: lambda w: grid.priority(w.dataset)
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/aggregate.py"


rule dataset_report:
    """One dataset: the paper's table, all metrics, the statistics against FT, figures, and
    its data card (from the dataset as prepared for the grid's first model)."""
    input:
        runs=f"{REPORT}/{{dataset}}/runs.parquet",
        epochs=f"{REPORT}/{{dataset}}/epochs.parquet",
        data=lambda w: grid.prepared(w.dataset, config["models"][0]),
    output:
        **report_outputs("dataset"),
    log:
        f"{LOGS}/report/{{dataset}}.log",
    benchmark:
        f"{LOGS}/benchmarks/dataset_report/{{dataset}}.tsv"
    priority: lambda w: grid.priority(w.dataset)
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        select_on=config["select_lr_on"],
        metrics=lambda w: grid.report_plan.metrics(w.dataset),
        protocol=grid.report_plan.protocol(),
        margin=config["equivalence_margin"],
        warm=config["warm_worker"],
    script:
        "../scripts/table.py"


rule summary_report:
    """Across datasets: Table 11, Table 12 (both ways), the Wilcoxon tests and the heatmap."""
    input:
        [
            f"{REPORT}/{d}/{name}"
            for d in grid.datasets
            for name in ("table.csv", "statistics.csv", "relative_improvement.csv")
        ],
    output:
        **report_outputs("summary"),
    log:
        f"{LOGS}/report/summary.log",
    benchmark:
        f"{LOGS}/benchmarks/summary_report/summary.tsv"
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        across_blocks=config["across_blocks"],
    script:
        "../scripts/summary.py"


rule partial_report:
    """Every artefact the finished runs allow, the cells without results listed and named in
    captions (`medft report RESULTS_DIR`): after `snakemake --keep-going` left failed cells,
    or while a grid runs. Only when asked for: `snakemake partial_report` (again later: add
    `--forcerun partial_report`); `all` stays strict."""
    output:
        directory(f"{RESULTS}/partial_report/{config['name']}"),
    log:
        f"{LOGS}/report/partial_report.log",
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/partial_report.py"

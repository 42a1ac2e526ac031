# Tables and figures take seconds: on a cluster they run on the submitting host (localrules),
# not in a queue, and never hold a GPU node's slot.
localrules:
    aggregate_dataset,
    dataset_table,
    all_runs,
    summary,


rule aggregate_dataset:
    """Every run of one dataset: final metrics and per-epoch logs, one Parquet each."""
    input:
        lambda w: grid.metrics_files(w.dataset),
    output:
        runs=f"{RESULTS}/{{dataset}}/runs.parquet",
        epochs=f"{RESULTS}/{{dataset}}/epochs.parquet",
    log:
        f"{LOGS}/aggregate/{{dataset}}.log",
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/aggregate.py"


rule dataset_table:
    """Mean ± SE per model × strategy (best per model bold) and relative improvement over FT."""
    input:
        f"{RESULTS}/{{dataset}}/runs.parquet",
    output:
        md=f"{RESULTS}/{{dataset}}/table.md",
        csv=f"{RESULTS}/{{dataset}}/table.csv",
        png=f"{RESULTS}/{{dataset}}/relative_improvement.png",
    log:
        f"{LOGS}/table/{{dataset}}.log",
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        select_on=config["select_lr_on"],
        protocol=grid.protocol(),
    script:
        "../scripts/table.py"


rule all_runs:
    """All datasets' runs and epoch logs in one Parquet each."""
    input:
        runs=expand(f"{RESULTS}/{{dataset}}/runs.parquet", dataset=grid.datasets),
        epochs=expand(f"{RESULTS}/{{dataset}}/epochs.parquet", dataset=grid.datasets),
    output:
        runs=f"{RESULTS}/runs.parquet",
        epochs=f"{RESULTS}/epochs.parquet",
    log:
        f"{LOGS}/all_runs.log",
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/concat.py"


rule summary:
    """Best combination per dataset and effectiveness counts (PROTOCOL's rule)."""
    input:
        f"{RESULTS}/runs.parquet",
    output:
        best_combination_md=f"{RESULTS}/summary/best_combination.md",
        best_combination_csv=f"{RESULTS}/summary/best_combination.csv",
        effectiveness_md=f"{RESULTS}/summary/effectiveness.md",
        effectiveness_csv=f"{RESULTS}/summary/effectiveness.csv",
    log:
        f"{LOGS}/summary.log",
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        select_on=config["select_lr_on"],
    script:
        "../scripts/summary.py"

rule features:
    """LP's frozen-backbone features, once per (dataset, model), for all its LP cells."""
    input:
        lambda w: grid.prepared(w.dataset, w.model),
    output:
        grid.features_path("{dataset}", "{model}"),
    log:
        f"{LOGS}/features/{{dataset}}/{{model}}.log",
    priority: lambda w: grid.priority(w.dataset)
    conda:
        "../../envs/medft.yaml"
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_job"],
        mem_mb=lambda w, attempt: grid.cost.mem_mb("features", w, attempt),
        runtime=lambda w: grid.cost.runtime_min("features", w),
    params:
        job=lambda w: grid.params.features(w.dataset, w.model),
        warm=config["warm_worker"],
    script:
        "../scripts/features.py"


rule train:
    """One cell: (dataset, model, strategy, lr, seed). LP-FT waits for the LP cell's checkpoint,
    LP for its shared features. A killed job resumes from its last epoch checkpoint when the
    workflow is re-run.
    """
    input:
        grid.train_inputs,
    output:
        f"{RESULTS}/{{dataset}}/{{model}}/{{strategy}}/lr{{lr}}/seed{{seed}}/metrics.json",
    log:
        f"{LOGS}/train/{{dataset}}/{{model}}/{{strategy}}_lr{{lr}}_seed{{seed}}.log",
    priority: lambda w: grid.priority(w.dataset)
    group:
        lambda w: pack_group(grid, w)
    conda:
        "../../envs/medft.yaml"
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_job"],
        mem_mb=lambda w, attempt: grid.cost.mem_mb("train", w, attempt),
        runtime=lambda w: grid.cost.runtime_min("train", w),
    params:
        run=lambda w: grid.params.train(w.dataset, w.model, w.strategy, w.lr, w.seed),
        keep_best=lambda w: grid.keeps_weights(w.strategy),
        warm=config["warm_worker"],
    script:
        "../scripts/train.py"

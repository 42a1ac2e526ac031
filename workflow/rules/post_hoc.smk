rule post_hoc:
    """An evaluation of one (dataset, model)'s finished runs that trains nothing: probes on
    the cached features, WiSE interpolation, robustness to corruptions (`post_hoc:`)."""
    input:
        grid.post_hoc_plan.inputs,
    output:
        grid.post_hoc_plan.index("{dataset}", "{model}", "{evaluation}"),
    log:
        f"{LOGS}/post_hoc/{{dataset}}/{{model}}/{{evaluation}}.log",
    benchmark:
        f"{LOGS}/post_hoc/{{dataset}}/{{model}}/{{evaluation}}.benchmark.tsv"
    priority: lambda w: grid.priority(w.dataset)
    conda:
        "../../envs/medft.yaml"
    threads: config["train_threads"]
    resources:
        gpu=config["gpus_per_job"],
        mem_mb=lambda w, attempt: grid.cost.mem_mb("post_hoc", w, attempt),
        runtime=lambda w: grid.cost.runtime_min("post_hoc", w),
    params:
        job=lambda w: grid.post_hoc_plan.params(w.dataset, w.model, w.evaluation),
        warm=config["warm_worker"],
    script:
        "../scripts/post_hoc.py"

rule prepare:
    """Raw data → preprocessed uint8 shards + Parquet manifest, once per dataset × input size."""
    input:
        lambda w: grid.raw_inputs(w.dataset),
    output:
        f"{DATA}/{{dataset}}/r{{resize}}_c{{crop}}/meta.json",
    log:
        f"{LOGS}/prepare/{{dataset}}_r{{resize}}_c{{crop}}.log",
    priority: lambda w: grid.priority(w.dataset)
    conda:
        "../../envs/medft.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: mem_for_attempt(4000, attempt),
        runtime=120,
    params:
        options=lambda w: grid.source_entry(w.dataset),
        out_dir=lambda w, output: os.path.dirname(output[0]),
    script:
        "../scripts/prepare.py"

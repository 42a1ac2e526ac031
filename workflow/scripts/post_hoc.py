from medft.warm import run_torch_job

run_torch_job(
    "post_hoc",
    {
        "name": snakemake.wildcards.evaluation,
        "inputs": list(snakemake.input),
        "params": dict(snakemake.params.job),
    },
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

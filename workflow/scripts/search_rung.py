from medft.warm import run_torch_job

run_torch_job(
    "search_rung",
    dict(snakemake.params.job),
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

from medft.warm import run_torch_job

run_torch_job(
    "train",
    {"run": dict(snakemake.params.run)},
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

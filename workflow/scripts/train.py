from medft.warm import run_torch_job

run_torch_job(
    "train",
    {"run": dict(snakemake.params.run), "keep_best": snakemake.params.keep_best},
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

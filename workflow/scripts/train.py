from medft.workflow import run_train_job

run_train_job(
    dict(snakemake.params.run),
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

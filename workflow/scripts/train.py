from medft.workflow import log_to, train_job

with log_to(snakemake.log[0]):
    train_job(dict(snakemake.params.run), snakemake.threads)

from medft.jobs import aggregate_job, log_to

with log_to(snakemake.log[0]):
    aggregate_job(list(snakemake.input), snakemake.output.runs, snakemake.output.epochs)

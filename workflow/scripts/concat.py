from medft.jobs import concat_job, log_to

with log_to(snakemake.log[0]):
    concat_job(list(snakemake.input.runs), snakemake.output.runs)
    concat_job(list(snakemake.input.epochs), snakemake.output.epochs)

from medft.jobs import log_to, summary_job

with log_to(snakemake.log[0]):
    summary_job(snakemake.input[0], snakemake.params.select_on, dict(snakemake.output))

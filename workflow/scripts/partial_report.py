from medft.jobs import log_to, partial_report_job

with log_to(snakemake.log[0]):
    partial_report_job(snakemake.config, snakemake.output[0])

from medft.jobs import log_to, summary_report_job

with log_to(snakemake.log[0]):
    summary_report_job(
        list(snakemake.input), list(snakemake.output), snakemake.params.across_blocks
    )

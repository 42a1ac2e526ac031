from medft.jobs import log_to, post_hoc_job

with log_to(snakemake.log[0]):
    post_hoc_job(
        snakemake.wildcards.evaluation,
        list(snakemake.input),
        dict(snakemake.params.job),
        snakemake.threads,
    )

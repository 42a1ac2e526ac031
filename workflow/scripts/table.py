from medft.jobs import log_to, table_job

with log_to(snakemake.log[0]):
    table_job(
        snakemake.input[0],
        snakemake.params.select_on,
        snakemake.output.md,
        snakemake.output.csv,
        snakemake.output.png,
        snakemake.params.protocol,
    )

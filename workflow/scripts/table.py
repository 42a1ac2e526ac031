from pathlib import Path

from medft.jobs import dataset_report_job, log_to

with log_to(snakemake.log[0]):
    dataset_report_job(
        snakemake.input.runs,
        snakemake.input.epochs,
        snakemake.params.select_on,
        dict(snakemake.output),
        snakemake.params.metrics,
        snakemake.params.protocol,
        snakemake.params.margin,
        str(Path(snakemake.input.data).parent),
    )

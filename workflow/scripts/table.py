from pathlib import Path

from medft.warm import run_torch_job

run_torch_job(
    "dataset_report",
    {
        "runs": snakemake.input.runs,
        "epochs": snakemake.input.epochs,
        "select_on": snakemake.params.select_on,
        "outputs": dict(snakemake.output),
        "metrics": snakemake.params.metrics,
        "protocol": snakemake.params.protocol,
        "margin": snakemake.params.margin,
        "data": str(Path(snakemake.input.data).parent),
    },
    snakemake.threads,
    snakemake.log[0],
    warm=snakemake.params.warm,
)

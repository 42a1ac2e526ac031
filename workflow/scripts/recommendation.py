from medft.jobs import log_to, recommendation_job

with log_to(snakemake.log[0]):
    recommendation_job(
        list(snakemake.input.runs),
        list(snakemake.input.decisions),
        list(snakemake.params.arm_runs),
        list(snakemake.params.budgets),
        snakemake.params.select_on,
        f"{snakemake.wildcards.dataset} · {snakemake.wildcards.model}",
        dict(snakemake.params.costs),
        {k: snakemake.output[k] for k in ("md", "csv", "png")},
        snakemake.params.margin,
    )

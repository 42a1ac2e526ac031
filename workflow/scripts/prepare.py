from medft.jobs import log_to, prepare_job

with log_to(snakemake.log[0]):
    prepare_job(
        snakemake.wildcards.dataset,
        dict(snakemake.params.options),
        int(snakemake.wildcards.resize),
        int(snakemake.wildcards.crop),
        snakemake.params.out_dir,
    )

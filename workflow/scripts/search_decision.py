from medft.jobs import log_to, search_decision_job

with log_to(snakemake.log[0]):
    search_decision_job(list(snakemake.input), snakemake.params.eta, snakemake.output[0])

from snakemake.utils import min_version

from medft.report.results_folder import record_grid

min_version("8.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/post_hoc.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/search.smk"


localrules:
    all,


onstart:
    # What `medft report RESULTS_DIR` and `medft status` read: the grid this folder should hold.
    record_grid(config)


rule all:
    input:
        grid.search_plan.targets()
        if grid.search.enabled
        else grid.report_plan.targets(),

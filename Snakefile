from snakemake.utils import min_version

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


rule all:
    input:
        grid.search_plan.targets()
        if grid.search.enabled
        else grid.report_plan.targets(),

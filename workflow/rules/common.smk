import os

from medft.cost import mem_for_attempt
from medft.workflow import (
    report_caption,
    report_name,
    report_subcategory,
    validate_config,
)

config.setdefault("name", report_name(config, workflow.overwrite_configfiles))
grid = validate_config(
    config, os.path.join(workflow.current_basedir, "../schemas/config.schema.yaml")
)
RESULTS = config["results"]
DATA = config["data"]
LOGS = f"{RESULTS}/logs"
REPORT = grid.report_dir
CAPTIONS = os.path.join(workflow.current_basedir, "../report")


def report_outputs(scope):
    """The report rule's outputs, each flagged for `snakemake --report`: captioned, in the
    dataset's category (or the summary's), tables and figures before downloads."""
    files = (
        grid.dataset_report_files("{dataset}")
        if scope == "dataset"
        else grid.summary_report_files()
    )
    return {
        key: report(
            path,
            caption=os.path.join(CAPTIONS, report_caption(key)),
            category="{dataset}" if scope == "dataset" else "Across datasets",
            subcategory=report_subcategory(key),
        )
        for key, path in files.items()
    }


wildcard_constraints:
    dataset="[^/]+",
    model="[^/]+",
    strategy="[^/]+",
    lr="[^/]+",
    seed=r"\d+",
    resize=r"\d+",
    crop=r"\d+",

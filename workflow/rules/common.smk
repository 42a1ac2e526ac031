import os

from medft.cost import mem_for_attempt
from medft.packing import pack_group
from medft.search.rungs import finalists, read_decision, survivors
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
REPORT = grid.report_plan.folder
CAPTIONS = os.path.join(workflow.current_basedir, "../report")


def report_outputs(scope):
    """The report rule's outputs, each flagged for `snakemake --report`: captioned, in the
    dataset's category (or the summary's), tables and figures before downloads."""
    files = (
        grid.report_plan.dataset_files("{dataset}")
        if scope == "dataset"
        else grid.report_plan.summary_files()
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
    evaluation="[a-z_]+",


# The search's input functions read the decisions (checkpoints of search.smk).
def decisions_of(dataset, model):
    """Every decision's file, each one a finished checkpoint (else Snakemake waits)."""
    return [
        checkpoints.search_decision.get(
            dataset=dataset, model=model, rung=str(k)
        ).output[0]
        for k in range(grid.search.last_decision + 1)
    ]


def arms_at(dataset, model, rung):
    if rung == 0:
        return grid.search_plan.arms(dataset)
    previous = checkpoints.search_decision.get(
        dataset=dataset, model=model, rung=str(rung - 1)
    )
    return survivors(read_decision(previous.output[0]))


def finalists_of(dataset, model):
    return finalists([read_decision(p) for p in decisions_of(dataset, model)])


def finalist_arms(dataset, model):
    """The arms whose every seed the recommendation compares: the finalists and FT's arms
    (the full-protocol reference)."""
    arms = list(
        finalists_of(dataset, model)[["strategy", "lr"]].itertuples(
            index=False, name=None
        )
    )
    reference = grid.search_plan.reference_arms(dataset)
    return arms + [a for a in reference if a not in arms]

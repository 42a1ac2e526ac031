import os

from snakemake.utils import validate

from medft.cost import mem_for_attempt
from medft.workflow import Grid

validate(config, schema="../schemas/config.schema.yaml")

grid = Grid(config)
RESULTS = config["results"]
DATA = config["data"]
LOGS = f"{RESULTS}/logs"


wildcard_constraints:
    dataset="[^/]+",
    model="[^/]+",
    strategy="[^/]+",
    lr="[^/]+",
    seed=r"\d+",
    resize=r"\d+",
    crop=r"\d+",

import os

from medft.cost import mem_for_attempt
from medft.workflow import validate_config

grid = validate_config(
    config, os.path.join(workflow.current_basedir, "../schemas/config.schema.yaml")
)
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

"""The plan: a validated config turned into the job grid, its paths and its parameters.

``Grid`` is what the Snakemake rules read; the jobs themselves are ``medft.jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from medft.data.preprocess import Preprocess
from medft.grid_axes import axis_point, with_axes

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


def report_caption(key: str) -> str:
    """The caption file (``workflow/report/``) of a report output key such as
    ``paper_table_html``: one caption per artefact, whatever its format."""
    return key.rsplit("_", 1)[0] + ".rst"


def report_subcategory(key: str) -> str:
    extension = key.rsplit("_", 1)[1]
    return {"html": "Tables", "png": "Figures"}.get(extension, "Files (Markdown, LaTeX, CSV, PDF)")


def report_name(config: dict, configfiles: list) -> str:
    """The config's ``name``, else the file name of the last ``--configfile`` without its
    extension, else ``config`` (config.yaml alone)."""
    if config.get("name"):
        return str(config["name"])
    return Path(str(configfiles[-1])).stem if configfiles else "config"


def load_config(configfiles: list[str | Path], workdir: str | Path = ".") -> dict:
    """The config the workflow would run with in ``workdir``: its ``config.yaml`` (the
    Snakefile's ``configfile:``), then each of ``configfiles`` layered over it as
    ``--configfile`` does, validated with the workflow's schema, which fills in defaults."""
    import yaml
    from snakemake.utils import update_config

    workdir = Path(workdir)
    schema = workdir / SCHEMA
    if not schema.exists():
        raise FileNotFoundError(
            f"{schema} not found: run this in the medft checkout (where the Snakefile is)"
        )
    config: dict = {}
    for path in [workdir / "config.yaml", *map(Path, configfiles)]:
        if path.exists():
            update_config(config, yaml.safe_load(path.read_text()) or {})
        elif path != workdir / "config.yaml":
            raise FileNotFoundError(f"config file {path} not found")
    validate_config(config, schema)
    return config


def validate_config(config: dict, schema: str | Path) -> Grid:
    """Check ``config`` the way the workflow does before any job runs, filling in the
    schema's defaults: unknown top-level keys (named, with the likely spelling and the valid
    keys), the schema, then ``check_grid``. Returns the grid."""
    import difflib

    import yaml
    from snakemake.utils import validate

    from medft.errors import ConfigError

    known = yaml.safe_load(Path(schema).read_text())["properties"]
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            raise ConfigError(
                f"config: unknown key `{key}`"
                + (f" (did you mean `{close[0]}`?)" if close else "")
                + f"; valid keys: {', '.join(known)}. A user config is layered over "
                "config.yaml: its keys replace those of config.yaml, so a misspelled one "
                "would silently leave the default in force"
            )
    validate(config, str(schema))
    try:
        Grid(config)  # registers the config's backbones (medft.foundation)
    except ValueError as error:
        raise ConfigError(f"config: {error}") from None
    config["strategies"] = strategy_list(config["strategies"])
    config["post_hoc"] = post_hoc_list(config.get("post_hoc", []))
    config["datasets"] = with_axes(
        config["datasets"], config.get("train_fractions"), config.get("image_sizes")
    )
    grid = Grid(config)
    check_grid(grid)
    return grid


def post_hoc_list(names: str | list[str]) -> list[str]:
    """The config's ``post_hoc``: ``all`` or a list of registered evaluations, checked here
    against the registry (``medft.post_hoc.POST_HOC``), which the schema does not list."""
    from medft.errors import ConfigError
    from medft.post_hoc import POST_HOC

    if names == "all":
        return POST_HOC.names()
    try:
        return [POST_HOC.canonical(name) for name in names]
    except ValueError as error:
        raise ConfigError(f"post_hoc: {error}") from None


def strategy_list(strategies: str | list[str]) -> list[str]:
    """The config's ``strategies`` as registered names: ``all`` is every registered strategy,
    ``paper`` the paper's eight; an unknown name fails, listing the valid ones."""
    from medft.errors import ConfigError
    from medft.strategies import STRATEGIES, paper_strategy_names, strategy_names

    if strategies == "all":
        return strategy_names()
    if strategies == "paper":
        return paper_strategy_names()
    try:
        return [STRATEGIES.canonical(name) for name in strategies]
    except ValueError as error:
        raise ConfigError(f"strategies: {error}") from None


def check_grid(grid: Grid) -> None:
    """What the schema cannot see, caught before any job runs: duplicate dataset names,
    each entry's keys against its source's options, unknown models and weights."""
    from collections import Counter

    from medft.architectures import check_model_name
    from medft.errors import ConfigError
    from medft.weights import validate_weights

    names = Counter(entry.get("name") for entry in grid.config["datasets"])
    doubled = [name for name, n in names.items() if n > 1]
    if doubled:
        raise ConfigError(
            f"datasets: the name {doubled[0]!r} is used by {names[doubled[0]]} entries; "
            "each dataset needs its own name (it names its folders)"
        )
    selection = tuple(grid.config.get(k, "val") for k in ("early_stop_on", "select_lr_on"))
    for name, options in grid.dataset_options.items():
        if getattr(options, "val_fraction", None) == 0 and selection != ("test", "test"):
            raise ConfigError(
                f"dataset {name!r}: `val_fraction: 0` leaves no validation split, so "
                "early stopping and lr selection must both use the evaluation split: set "
                "`early_stop_on: test` and `select_lr_on: test` (config/paper.yaml does)"
            )
    if "probes" in grid.config.get("post_hoc", []) and grid.config["weights"] == "none":
        raise ConfigError(
            "post_hoc: `probes` read a pretrained backbone's features; with `weights: none` "
            "there are none to probe — drop `probes` or choose pretrained weights"
        )
    try:
        grid.strategy_options  # noqa: B018 -- building it is the check
    except ValueError as error:
        raise ConfigError(f"strategy_options: {error}") from None
    if grid.config.get("checkpoints") == "none":
        from medft.post_hoc import POST_HOC

        readers = [n for n in grid.config["post_hoc"] if POST_HOC.get(n).reads_weights]
        if readers:
            raise ConfigError(
                f"config: post_hoc {', '.join(readers)} read(s) every run's best.pt, which "
                "`checkpoints: none` deletes: set `checkpoints: best` or drop them from post_hoc"
            )
    for model in grid.config["models"]:
        try:
            check_model_name(model)
            validate_weights(grid.config["weights"], model)
        except ValueError as error:
            raise ConfigError(f"config: {error}") from None


def lr_tag(lr: float) -> str:
    return f"{lr:g}"


# Keys of a dataset entry that set the dataset's part of the grid, not its source's options:
# they are neither parsed by the source nor passed to the prepare job (a change to them must
# not prepare the data again).
GRID_KEYS = ("lrs",)


@dataclass(frozen=True)
class Grid:
    config: dict

    def __post_init__(self) -> None:
        from medft.foundation import register_config_backbones

        register_config_backbones(self.config.get("backbones", {}))

    @property
    def results(self) -> str:
        return self.config["results"]

    @property
    def datasets(self) -> dict[str, dict]:
        return {entry["name"]: entry for entry in self.config["datasets"]}

    def source_entry(self, dataset: str) -> dict:
        """The dataset's entry as its source reads it: without the grid's keys."""
        return {k: v for k, v in self.datasets[dataset].items() if k not in GRID_KEYS}

    def dataset_config(self, dataset: str) -> dict:
        """The config as it applies to ``dataset``: its entry's grid keys in place of the
        grid's."""
        entry = self.datasets[dataset]
        return {**self.config, **{key: entry[key] for key in GRID_KEYS if key in entry}}

    def lrs(self, dataset: str) -> list[float]:
        """The dataset's learning rates: its entry's `lrs`, else the grid's."""
        return self.dataset_config(dataset)["lrs"]

    def runs_per_strategy(self, dataset: str) -> int:
        """Each strategy's runs on one (dataset, model): its lrs × the seeds."""
        return len(self.lrs(dataset)) * len(self.config["seeds"])

    def priority(self, dataset: str) -> int:
        """Every job of ``dataset`` before those of the datasets listed after it: each
        dataset's report is done as early as it can be, and the heaviest dataset listed first
        does not leave its post-hoc jobs running alone at the end."""
        names = list(self.datasets)
        return len(names) - names.index(dataset)

    @cached_property
    def dataset_options(self) -> dict:
        """Each dataset's typed source options (``medft.data.options``), by name."""
        from medft.data.sources import parse_options

        return {name: parse_options(self.source_entry(name)) for name in self.datasets}

    @cached_property
    def cost(self):
        from medft.cost import CostModel

        return CostModel(self)

    def preprocess(self, model: str, dataset: str | None = None) -> Preprocess:
        """The config's ``image_size``, else the model's own; a dataset on the resolution axis
        crops its size, resized in the same ratio."""
        size = self.config.get("image_size")
        if size:
            base = Preprocess(size["resize"], size["crop"])
        else:
            from medft.architectures import model_preprocess

            base = model_preprocess(model)
        point = axis_point(dataset) if dataset else None
        if point is None or point.size is None:
            return base
        return Preprocess(round(point.size * base.resize / base.crop), point.size)

    def raw_inputs(self, dataset: str) -> list[str]:
        from medft.data.sources import SOURCES

        options = self.dataset_options[dataset]
        return SOURCES.get(options.source).inputs(options)

    @cached_property
    def strategy_options(self):
        from medft.strategies import StrategyOptions

        return StrategyOptions(**self.config.get("strategy_options", {}))

    def first_stage(self, strategy: str) -> str | None:
        """The strategy whose cell (same dataset, model, lr, seed) ``strategy`` starts from."""
        from medft.strategies import STRATEGIES

        return STRATEGIES.get(strategy).starts_from(self.strategy_options)

    def train_inputs(self, wildcards) -> list[str]:
        """A cell reads its prepared data; one that starts from another strategy's cell waits
        for it, one that trains a head on shared features for its (dataset, model)'s features
        file. One input function per job: Snakemake's cost of planning grows with each."""
        w = wildcards
        data = self.prepared(w.dataset, w.model)
        first = self.first_stage(w.strategy)
        if first:
            return [data, f"{self.run_dir(w.dataset, w.model, first, w.lr, w.seed)}/metrics.json"]
        shared = self.features_file(w.dataset, w.model, w.strategy)
        return [data, shared] if shared else [data]

    def keeps_weights(self, strategy: str) -> bool:
        """Whether ``strategy``'s runs keep ``best.pt`` (``checkpoints``): always under
        ``best``; under ``none``, only where another strategy of the grid starts from them."""
        if self.config.get("checkpoints", "best") == "best":
            return True
        return any(self.first_stage(other) == strategy for other in self.config["strategies"])

    def backbone_record(self, model: str) -> dict | None:
        """A backbone the config's ``backbones:`` defines, for the job that builds it (a job
        process does not read the config); None for every other model."""
        entry = self.config.get("backbones", {}).get(model)
        if entry is None:
            return None
        from medft.foundation import BACKBONES

        return BACKBONES.get(model).record()

    def features_file(self, dataset: str, model: str, strategy: str) -> str | None:
        """The features file ``strategy``'s cells read, if any. A frozen backbone gives the
        same features at every lr and seed, so they are computed once per (dataset, model) —
        except for a randomly initialised backbone, which differs per seed."""
        from medft.strategies import STRATEGIES

        if not STRATEGIES.get(strategy).shares_features(self.strategy_options):
            return None
        if self.config["weights"] == "none":
            return None
        return self.features_path(dataset, model)

    def features_path(self, dataset: str, model: str) -> str:
        return f"{self.results}/{dataset}/{model}/features.pt"

    def prepared(self, dataset: str, model: str) -> str:
        """The meta.json of ``dataset`` preprocessed for ``model``'s input size."""
        return f"{self.config['data']}/{dataset}/{self.preprocess(model, dataset).tag}/meta.json"

    def run_dir(self, dataset, model, strategy, lr, seed) -> str:
        return f"{self.results}/{dataset}/{model}/{strategy}/lr{lr}/seed{seed}"

    def cells(self, dataset: str | None = None) -> list[tuple]:
        c = self.config
        names = [dataset] if dataset else list(self.datasets)
        return [
            (d, m, s, lr_tag(lr), seed)
            for d in names
            for m in c["models"]
            for s in c["strategies"]
            for lr in self.lrs(d)
            for seed in c["seeds"]
        ]

    def metrics_files(self, dataset: str | None = None) -> list[str]:
        return [f"{self.run_dir(*cell)}/metrics.json" for cell in self.cells(dataset)]

    # -- the budgeted search (medft.search.plan; workflow/rules/search.smk) ------------------
    @cached_property
    def search(self):
        from medft.search.rungs import SearchSettings

        return SearchSettings.from_config(self.config.get("search"))

    @cached_property
    def report_plan(self):
        from medft.report.plan import ReportPlan

        return ReportPlan(self)

    @cached_property
    def params(self):
        from medft.job_params import JobParams

        return JobParams(self)

    @cached_property
    def post_hoc_plan(self):
        from medft.post_hoc.plan import PostHocPlan

        return PostHocPlan(self)

    @cached_property
    def search_plan(self):
        from medft.search.plan import SearchPlan

        return SearchPlan(self)

"""docs/architecture.md's promise, kept: a strategy is added in one place (a class and its
registry entry) and the rest of medft plans, prices and trains it without another edit."""

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from medft.engine import Cell, TrainConfig
from medft.strategies import STRATEGIES, StrategyInfo
from medft.strategies.base import Strategy
from medft.workflow import Grid, load_config

REPO = Path(__file__).resolve().parents[1]


class ToyBiases(Strategy):
    """BitFit-like: only biases and the head train."""

    def on_epoch_start(self, ctx) -> None:
        self.epoch = ctx.epoch
        head = set(self.model.head_params)
        self.set_trainable([n for n in self.named if n.endswith(".bias") or n in head])


class ToyAdapter(Strategy):
    """Adds a module of its own (a learnable input gain) before the model meets the device;
    only it and the head train."""

    @classmethod
    def extend_model(cls, model, options) -> None:
        model.module.register_parameter("toy_gain", nn.Parameter(torch.ones(())))
        model.module.register_forward_pre_hook(lambda m, args: (args[0] * m.toy_gain,))
        last = model.blocks[-1]
        model.blocks[-1] = type(last)(last.name, (*last.params, "toy_gain"))

    def on_epoch_start(self, ctx) -> None:
        self.epoch = ctx.epoch
        self.set_trainable(["toy_gain", *self.model.head_params])


@pytest.fixture
def toys(monkeypatch):
    """ToyBiases and ToyAdapter registered for one test, as a new strategy module would."""
    for info in (
        StrategyInfo("Toy-Biases", ToyBiases, "biases and head", caption=lambda o: "toy"),
        StrategyInfo("Toy-Adapter", ToyAdapter, "a gain and the head"),
    ):
        monkeypatch.setitem(STRATEGIES._entries, info.name.lower(), info)
        monkeypatch.setitem(STRATEGIES._display, info.name.lower(), info.name)


def test_a_registered_strategy_is_planned_and_priced(toys, tmp_path):
    user = tmp_path / "toy.yaml"
    user.write_text(yaml.safe_dump({"strategies": ["FT", "toy-biases"]}))
    grid = Grid(load_config([user], workdir=REPO))
    assert {cell[2] for cell in grid.cells()} == {"FT", "Toy-Biases"}
    assert "; toy." in grid.report_plan.protocol()
    assert grid.cost.train(grid.cells()[0][0], "resnet50", "Toy-Biases").upper_s > 0


def test_an_unknown_strategy_fails_the_config_listing_the_registered(tmp_path):
    from medft.errors import ConfigError

    user = tmp_path / "typo.yaml"
    user.write_text(yaml.safe_dump({"strategies": ["FT", "L3-SP"]}))
    with pytest.raises(ConfigError, match="unknown strategy 'L3-SP'; choose one of: FT, LP"):
        load_config([user], workdir=REPO)


@pytest.mark.parametrize("name", ["Toy-Biases", "Toy-Adapter"])
def test_a_registered_strategy_trains(name, toys, tiny_datasets, tmp_path):
    config = TrainConfig(
        data=str(tiny_datasets["binary"]),
        model="test_resnet",
        weights="none",
        strategy=name,
        lr=1e-2,
        seed=0,
        epochs=1,
        batch_size=16,
        workers=0,
        out=str(tmp_path / "run"),
    )
    cell = Cell(config)
    cell.build()
    before = {n: p.detach().clone() for n, p in cell.model.module.named_parameters()}
    summary = cell.run()
    moved = {n for n, p in cell.model.module.named_parameters() if not torch.equal(before[n], p)}
    head = set(cell.model.head_params)
    if name == "Toy-Biases":
        assert head < moved and all(n.endswith(".bias") or n in head for n in moved)
    else:
        assert moved == head | {"toy_gain"}
    assert summary["best_epoch"] == 0 and (tmp_path / "run" / "metrics.json").exists()


def test_a_registered_artefact_is_planned_and_written(monkeypatch, tmp_path):
    """A writer and its registry entry: the workflow expects the file (so `report()` flags
    it) and the report writes it."""
    from medft.report.artefacts import ARTEFACTS, Artefact, dataset_artefacts
    from medft.report.evidence import Evidence
    from test_report import make_runs

    def write_n_runs(report, stem):
        stem.with_suffix(".txt").write_text(str(len(report.evidence.runs)))

    entry = Artefact("n_runs", ("txt",), "dataset", write_n_runs)
    monkeypatch.setitem(ARTEFACTS._entries, "n_runs", entry)
    monkeypatch.setitem(ARTEFACTS._display, "n_runs", "n_runs")
    grid = Grid({**load_config([], workdir=REPO), "name": "config"})
    assert grid.report_plan.dataset_files("chexpert")["n_runs_txt"].endswith("/chexpert/n_runs.txt")
    written = dataset_artefacts(Evidence.from_runs(make_runs()), tmp_path)
    assert tmp_path / "n_runs.txt" in written
    assert (tmp_path / "n_runs.txt").read_text() == "36"


def test_every_artefact_has_one_caption_file_and_its_docs_entry_is_current():
    from medft.report.artefacts import ARTEFACTS, docs_section

    docs = (REPO / "docs" / "report.md").read_text()
    for stem in ARTEFACTS.names():
        assert (REPO / "workflow" / "report" / f"{stem}.rst").is_file(), stem
        assert f"/{stem}." in docs, f"docs/report.md does not describe {stem}"
    assert docs_section() in docs, "docs/report.md's artefact list is stale: run `make docs`"


def test_a_writer_without_a_docstring_is_refused_for_the_docs():
    from medft.report.catalogue import Artefact

    entry = Artefact("undocumented", ("csv",), "dataset", lambda report, stem: None)
    with pytest.raises(ValueError, match="undocumented.*no docstring"):
        assert entry.description


def test_the_schema_enums_are_the_registries():
    """A source or metric added to its registry is accepted by the config without a second
    list to edit; the schema's enums are checked against the registries here."""
    from medft.data.sources import SOURCES
    from medft.metrics import METRICS

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    entry = schema["properties"]["datasets"]["items"]["properties"]
    assert entry["source"]["enum"] == SOURCES.names()
    assert entry["main_metric"]["enum"] == list(METRICS)


def test_planning_reads_the_strategy_registry_without_loading_torch():
    """Each strategy module registers itself; torch loads only when training code runs."""
    import subprocess
    import sys

    probe = (
        "import sys, medft.workflow, medft.cost\n"
        "from medft.strategies import strategy_names\n"
        "assert len(strategy_names()) >= 8\n"
        "print(sorted(m for m in ('torch', 'timm', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_strategy_module_read_first_leaves_torch_and_torchvision_importable(tmp_path):
    """`medft prepare` imports the registry (for its --help) before torchvision: torch must
    then import as usual."""
    import subprocess
    import sys

    probe = (
        "import medft.strategies.auto_rgn as m\n"
        "from torchvision.transforms.v2 import functional\n"
        "import torch\n"
        "assert m.torch.zeros(2).sum().item() == 0 and m.torch.nn is torch.nn\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)

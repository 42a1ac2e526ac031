"""Each registered strategy, one epoch at a time: which parameters move and which do not."""

import pytest
import torch
from torch import nn

from medft import loop
from medft.data.preprocess import Preprocess
from medft.engine import Cell, TrainConfig
from medft.models import Block, BuiltModel
from medft.strategies import STRATEGIES, StrategyOptions, strategy_names
from medft.strategies.auto_rgn import AutoRGN, batchnorm_parameters
from medft.strategies.base import EpochContext
from medft.strategies.penalties import L1SP, L2SP

# What a strategy trains in epochs 0 and 1, as block indices of test_resnet's backbone
# (blocks 0..4; block 5 is the head). "all" = every parameter; "all but BatchNorm" = every
# parameter that is not a BatchNorm scale or bias.
EXPECTED_TRAINABLE = {
    "FT": ("all", "all"),
    "LP": ((), ()),
    "G-LF": ((), (4,)),
    "G-FL": ((), (0,)),
    "LP-FT": ("all", "all"),
    "L1-SP": ("all", "all"),
    "L2-SP": ("all", "all"),
    "Auto-RGN": ("all but BatchNorm", "all but BatchNorm"),
    "BitFit": ("biases", "biases"),
    "LoRA": ("adapters", "adapters"),
    "SSF": ("scales and shifts", "scales and shifts"),
}


def make_cell(data, out, strategy, weights="none", **overrides) -> Cell:
    settings = dict(model="test_resnet", weights=weights, lr=1e-2, seed=0, epochs=2, batch_size=16)
    config = TrainConfig(
        data=str(data), strategy=strategy, out=str(out), **{**settings, **overrides}
    )
    return Cell(config)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_every_registered_strategy_has_an_expectation():
    assert set(strategy_names()) == set(EXPECTED_TRAINABLE)


@pytest.mark.parametrize("name", strategy_names())
def test_which_parameters_move_each_epoch(name, tiny_datasets, tiny_weights, tmp_path):
    data = tiny_datasets["binary"]
    init = None
    if name == "LP-FT":
        init = tmp_path / "init.pt"
        seed_model = make_cell(data, tmp_path / "seed", "FT", tiny_weights)
        seed_model.build()
        torch.save({"model": seed_model.model.module.state_dict()}, init)
    cell = make_cell(
        data,
        tmp_path / "run",
        name,
        tiny_weights,
        init=str(init) if init else None,
        options=StrategyOptions(lp_feature_cache=False),
    )
    cell.build()
    blocks, head = cell.model.blocks, set(cell.model.head_params)
    for epoch, expected in enumerate(EXPECTED_TRAINABLE[name]):
        before = snapshot(cell.model.module)
        cell.strategy.on_epoch_start(
            EpochContext(epoch, cell.optimizer, cell.probe_gradients(epoch))
        )
        cell.train_one_epoch(epoch)
        after = cell.model.module.state_dict()
        params = [n for n, _ in cell.model.module.named_parameters()]
        moved = {n for n in params if not torch.equal(before[n], after[n])}
        if expected == "all":
            want = set(params)
        elif expected == "all but BatchNorm":
            want = set(params) - batchnorm_parameters(cell.model.module)
        elif expected == "biases":
            want = head | {n for n in params if n.endswith(".bias")}
        elif expected == "adapters":
            want = head | {n for n in params if ".lora_" in n}
        elif expected == "scales and shifts":
            want = head | {n for n in params if ".ssf_" in n}
        else:
            want = head | {p for i in expected for p in blocks[i].params}
        trainable = {n for n, p in cell.model.module.named_parameters() if p.requires_grad}
        assert trainable == want, f"{name} epoch {epoch}: {sorted(trainable ^ want)[:4]}"
        if name == "Auto-RGN":
            # layers whose RGN is tiny next to the largest get a step too small to register
            fast = {
                n
                for g in cell.optimizer.param_groups
                if g["lr"] >= 1e-2 * cell.strategy.lr
                for n, p in cell.model.module.named_parameters()
                if any(p is q for q in g["params"])
            }
            assert fast <= moved <= want and head <= moved
        else:
            assert moved == want, f"{name} epoch {epoch}: unexpected {sorted(moved ^ want)[:4]}"
        if name == "LP":
            buffers = [n for n, _ in cell.model.module.named_buffers()]
            assert all(torch.equal(before[b], after[b]) for b in buffers), "BN stats moved"


@pytest.mark.parametrize("name, order", [("G-LF", [4, 3, 2, 1, 0]), ("G-FL", [0, 1, 2, 3, 4])])
def test_gradual_unfreezing_adds_one_block_per_epoch(name, order, tiny_datasets, tmp_path):
    cell = make_cell(tiny_datasets["binary"], tmp_path, name)
    cell.build()
    backbone = cell.model.blocks[:-1]
    for epoch in range(len(backbone) + 1):
        cell.strategy.on_epoch_start(EpochContext(epoch, cell.optimizer, None))
        lrs = loop.block_lrs(cell.optimizer, cell.model)
        trainable = [i for i, b in enumerate(backbone) if lrs[f"lr_{b.name}"] > 0]
        assert sorted(trainable) == sorted(order[:epoch])
        assert lrs[f"lr_{cell.model.blocks[-1].name}"] == 1e-2  # the head always trains
        assert cell.may_stop(epoch) == (epoch == len(backbone))


def test_lp_ft_starts_from_the_lp_checkpoint_head(tiny_datasets, tmp_path):
    data = tiny_datasets["multiclass"]
    lp = make_cell(data, tmp_path / "lp", "LP", epochs=2)
    lp.run()
    best_head = torch.load(tmp_path / "lp" / "best.pt")["model"]["fc.weight"]
    lpft = make_cell(data, tmp_path / "lpft", "LP-FT", init=str(tmp_path / "lp" / "best.pt"))
    lpft.build()
    assert torch.equal(lpft.model.head_module.weight.detach(), best_head)
    untrained = make_cell(data, tmp_path / "ft", "FT")
    untrained.build()
    assert not torch.equal(untrained.model.head_module.weight.detach(), best_head)
    assert lpft.optimizer.state == {}  # a fresh Adam
    lpft.strategy.on_epoch_start(EpochContext(0, lpft.optimizer, None))
    assert all(p.requires_grad for p in lpft.model.module.parameters())


def tiny_model() -> BuiltModel:
    module = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    blocks = [
        Block("conv", ("0.weight", "0.bias", "1.weight", "1.bias")),
        Block("head", ("3.weight", "3.bias")),
    ]
    return BuiltModel(module, blocks, "3", Preprocess(1, 1), (0, 0, 0), (1, 1, 1))


def move_weights(model: BuiltModel) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        conv, head = model.module[0].weight, model.module[3].weight
        conv += torch.tensor([0.5, -2.0]).view(2, 1, 1, 1)
        head.copy_(torch.tensor([[1.0, -3.0], [0.0, 2.0]]))
    return conv, head


@pytest.mark.parametrize("cls", [L1SP, L2SP])
def test_sp_penalties_are_zero_at_the_starting_point(cls):
    model = tiny_model()
    with torch.no_grad():
        model.module[3].weight.zero_()
    strategy = cls(model, 1e-3, StrategyOptions())
    assert strategy.extra_loss().item() == 0.0


def test_l2_sp_equals_its_formula_and_pulls_back_to_the_start():
    model = tiny_model()
    start = model.module[0].weight.detach().clone()
    options = StrategyOptions(l2sp_alpha=0.3, l2sp_beta=0.1)
    strategy = L2SP(model, 1e-3, options)
    conv, head = move_weights(model)
    # α/2 (0.5² + 2²) + β/2 (1 + 9 + 0 + 4); biases and BatchNorm are not penalised
    expected = 0.3 / 2 * (0.25 + 4.0) + 0.1 / 2 * 14.0
    loss = strategy.extra_loss()
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.allclose(conv.grad, 0.3 * (conv.detach() - start))
    assert torch.allclose(head.grad, 0.1 * head.detach())
    assert model.module[1].weight.grad is None and model.module[0].bias.grad is None


def test_l1_sp_equals_its_formula_and_pulls_back_to_the_start():
    model = tiny_model()
    start = model.module[0].weight.detach().clone()
    strategy = L1SP(model, 1e-3, StrategyOptions(l1sp_alpha=0.3, l1sp_beta=0.1))
    conv, head = move_weights(model)
    expected = 0.3 * (0.5 + 2.0) + 0.1 * (1 + 3 + 0 + 2)
    loss = strategy.extra_loss()
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.allclose(conv.grad, 0.3 * torch.sign(conv.detach() - start))


def test_sp_include_norm_adds_batchnorm_affine_parameters():
    model = tiny_model()
    with torch.no_grad():
        model.module[3].weight.zero_()
    strategy = L2SP(model, 1e-3, StrategyOptions(sp_include_norm=True, l2sp_alpha=2.0))
    with torch.no_grad():
        model.module[1].weight += 1.0  # two BN scales moved by 1
    assert strategy.extra_loss().item() == pytest.approx(2.0 / 2 * 2)


@pytest.mark.parametrize(
    "groups, names",
    [
        ("tensor", ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]),
        ("module", ["0", "1", "3"]),  # conv, norm, linear
    ],
)
def test_auto_rgn_sets_each_lr_from_its_relative_gradient_norm(groups, names):
    torch.manual_seed(0)
    model = tiny_model()
    lr = 1e-3
    options = StrategyOptions(rgn_batches=3, rgn_groups=groups, rgn_norm="scaled")
    strategy = AutoRGN(model, lr, options)
    optimizer = torch.optim.Adam(strategy.param_groups(), lr=lr)
    assert [g["name"] for g in optimizer.param_groups] == names
    batches = [(torch.randn(4, 1, 1, 1), torch.randint(0, 2, (4,))) for _ in range(3)]
    by_hand = torch.zeros(len(names))
    units = [
        [p for n, p in model.module.named_parameters() if n == name or n.startswith(name + ".")]
        for name in names
    ]

    def probe(n):
        for x, y in batches[:n]:
            model.module.zero_grad()
            nn.functional.cross_entropy(model.module(x), y).backward()
            for i, params in enumerate(units):
                g = torch.cat([p.grad.flatten() for p in params])
                w = torch.cat([p.detach().flatten() for p in params])
                by_hand[i] += g.norm() / w.norm() / n
            yield

    # Adam has taken a step before this epoch; the reference code starts it afresh.
    model.module(batches[0][0]).sum().backward()
    optimizer.step()
    assert optimizer.state
    strategy.on_epoch_start(EpochContext(1, optimizer, probe))
    expected = lr * by_hand / by_hand.max()
    got = torch.tensor([g["lr"] for g in optimizer.param_groups])
    assert torch.allclose(got, expected, rtol=1e-5)
    assert got.max().item() == pytest.approx(lr)
    assert optimizer.state == {}  # rgn_rebuild_optimizer, on by default


def reference_model() -> BuiltModel:
    """Named as the reference code's models are, so its "bn" name filter and medft's
    selection by type pick the same tensors."""
    from collections import OrderedDict

    layers = OrderedDict(
        conv1=nn.Conv2d(1, 3, 1),
        bn1=nn.BatchNorm2d(3),
        relu=nn.ReLU(),
        conv2=nn.Conv2d(3, 2, 1),
        bn2=nn.BatchNorm2d(2),
        flatten=nn.Flatten(),
        fc=nn.Linear(2, 3),
    )
    with torch.no_grad():  # BatchNorm at its init (scale 1, bias 0) would have no RGN
        for bn in (layers["bn1"], layers["bn2"]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    blocks = [
        Block("stem", ("conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias")),
        Block("body", ("conv2.weight", "conv2.bias", "bn2.weight", "bn2.bias")),
        Block("head", ("fc.weight", "fc.bias")),
    ]
    return BuiltModel(nn.Sequential(layers), blocks, "fc", Preprocess(1, 1), (0,), (1,))


def reference_rgn(module: nn.Module, batches, keep) -> dict[str, float]:
    """The reference code's ``get_lr_weights``, by hand: per batch ‖g‖/‖w‖ of each kept
    tensor from ``torch.autograd.grad``, averaged over batches."""
    names = [n for n, _ in module.named_parameters()]
    totals = dict.fromkeys([n for n in names if keep(n)], 0.0)
    for x, y in batches:
        grads = torch.autograd.grad(
            nn.functional.cross_entropy(module(x), y), list(module.parameters())
        )
        for name, param, grad in zip(names, module.parameters(), grads, strict=True):
            if name in totals:
                totals[name] += (grad.norm() / param.norm()).item() / len(batches)
    return totals


@pytest.mark.parametrize(
    "options, in_max, in_optimizer",
    [
        # the reference: BatchNorm neither in max(RGN) nor trained, the head in both
        ({}, lambda n: "bn" not in n, lambda n: "bn" not in n),
        # the new head out of the maximum, at the full lr
        ({"rgn_head": "full"}, lambda n: "bn" not in n and "fc" not in n, lambda n: "bn" not in n),
        # medft before 0.2: every tensor in both
        ({"rgn_norm": "scaled"}, lambda n: True, lambda n: True),
    ],
    ids=["reference", "head-full", "norm-scaled"],
)
def test_auto_rgn_selects_and_scales_as_the_reference_code(options, in_max, in_optimizer):
    torch.manual_seed(1)
    model, lr = reference_model(), 1e-3
    batches = [(torch.randn(8, 1, 1, 1), torch.randint(0, 3, (8,))) for _ in range(3)]
    strategy = AutoRGN(model, lr, StrategyOptions(rgn_batches=3, **options))
    optimizer = torch.optim.Adam(strategy.param_groups(), lr=lr)
    names = [n for n, _ in model.module.named_parameters()]
    assert [g["name"] for g in optimizer.param_groups] == [n for n in names if in_optimizer(n)]

    def probe(n):
        strategy.train_mode()
        for x, y in batches[:n]:
            model.module.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model.module(x), y).backward()
            yield

    model.module.train()
    rgn = reference_rgn(model.module, batches, in_optimizer)
    strategy.on_epoch_start(EpochContext(0, optimizer, probe))
    top = max(v for n, v in rgn.items() if in_max(n))
    expected = {n: lr * (v / top if in_max(n) else 1.0) for n, v in rgn.items()}
    got = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert got == pytest.approx(expected, rel=1e-5)
    trainable = {n for n, p in model.module.named_parameters() if p.requires_grad}
    assert trainable == {n for n in names if in_optimizer(n)}
    assert model.module.training and model.module.bn1.training  # statistics adapt


def test_batchnorm_is_selected_by_type_where_the_reference_name_filter_misses_it():
    norm = nn.BatchNorm2d(2)
    module = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Sequential(nn.Conv2d(2, 2, 1), norm))
    assert batchnorm_parameters(module) == {"1.1.weight", "1.1.bias"}  # no "bn" in the name
    assert batchnorm_parameters(reference_model().module) == {
        "bn1.weight",
        "bn1.bias",
        "bn2.weight",
        "bn2.bias",
    }


def test_auto_rgn_gives_a_tensor_of_zeros_the_full_lr():
    model = tiny_model()
    with torch.no_grad():
        model.module[0].bias.zero_()
    strategy = AutoRGN(model, 1e-3, StrategyOptions(rgn_batches=1))
    optimizer = torch.optim.Adam(strategy.param_groups(), lr=1e-3)

    def probe(n):
        model.module.zero_grad()
        nn.functional.cross_entropy(model.module(torch.randn(4, 1, 1, 1)), torch.ones(4).long())
        model.module(torch.randn(4, 1, 1, 1)).pow(2).sum().backward()
        yield

    strategy.on_epoch_start(EpochContext(0, optimizer, probe))
    lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["0.bias"] == 1e-3 and all(0 < v <= 1e-3 for v in lrs.values())


@pytest.mark.parametrize("model, stages", [("resnet50", 6), ("densenet121", 9), ("vgg19", 6)])
@pytest.mark.parametrize("name", ["G-LF", "G-FL"])
def test_gradual_unfreezing_takes_the_papers_stages(name, model, stages):
    """The last block (with the head) trains from epoch 0, then one block per epoch: 6 / 9 / 6
    stages, each epoch's trainable count the sum of the blocks unfrozen so far."""
    from medft.models import create_model

    with torch.device("meta"):  # the architecture without memory or weights
        built = create_model(model, 2, weights="none")
    assert len(built.blocks) == stages
    sizes = dict(built.module.named_parameters())
    block_sizes = [sum(sizes[p].numel() for p in b.params) for b in built.blocks]
    order = [stages - 1, *(range(stages - 2, -1, -1) if name == "G-LF" else range(stages - 1))]
    info = STRATEGIES.get(name)
    strategy = info.cls(built, 1e-3, StrategyOptions())
    assert info.stoppable_from(StrategyOptions(), len(built.blocks)) == stages - 1
    for epoch in range(stages + 1):
        strategy.on_epoch_start(EpochContext(epoch, None, None))
        trainable = sum(p.numel() for p in built.module.parameters() if p.requires_grad)
        assert trainable == sum(block_sizes[i] for i in order[: epoch + 1]), (name, epoch)
    assert set(built.head_params) <= set(built.blocks[-1].params)


def batchnorm_stats(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "running_" in k}


@pytest.mark.parametrize("frozen_bn", ["eval", "train"])
@pytest.mark.parametrize("name", [n for n in strategy_names() if n in ("LP", "G-LF", "G-FL")])
def test_frozen_batchnorm_statistics_follow_the_option(name, frozen_bn, tiny_datasets, tmp_path):
    """Epoch 0 of every strategy that freezes the backbone: its weights never move; its
    BatchNorm running statistics move only with ``frozen_bn: train``."""
    options = StrategyOptions(frozen_bn=frozen_bn, lp_feature_cache=False)
    cell = make_cell(tiny_datasets["binary"], tmp_path, name, options=options)
    cell.build()
    head = set(cell.model.head_params)
    before, stats = snapshot(cell.model.module), batchnorm_stats(cell.model.module)
    cell.strategy.on_epoch_start(EpochContext(0, cell.optimizer, cell.probe_gradients(0)))
    cell.train_one_epoch(0)
    after = cell.model.module.state_dict()
    backbone = [n for n, _ in cell.model.module.named_parameters() if n not in head]
    assert all(torch.equal(before[n], after[n]) for n in backbone)
    moved = [k for k, v in stats.items() if not torch.equal(v, after[k])]
    assert bool(moved) == (frozen_bn == "train")


def test_lp_features_are_shared_only_where_exact():
    lp = STRATEGIES.get("LP")
    assert lp.shares_features(StrategyOptions(frozen_bn="eval"))
    assert not lp.shares_features(StrategyOptions(frozen_bn="train"))
    assert not lp.shares_features(StrategyOptions(lp_feature_cache=False))


def test_lp_ft_in_one_run_probes_then_fine_tunes_with_a_fresh_adam(tiny_datasets, tmp_path):
    options = StrategyOptions(lpft_lp_epochs=2, lp_feature_cache=False)
    assert STRATEGIES.get("LP-FT").starts_from(options) is None
    assert STRATEGIES.get("LP-FT").starts_from(StrategyOptions()) == "LP"
    cell = make_cell(tiny_datasets["binary"], tmp_path, "LP-FT", epochs=4, options=options)
    cell.build()
    head = set(cell.model.head_params)
    for epoch in range(4):
        before = snapshot(cell.model.module)
        cell.strategy.on_epoch_start(EpochContext(epoch, cell.optimizer, None))
        if epoch == 2:
            assert cell.optimizer.state == {}
        cell.train_one_epoch(epoch)
        after = cell.model.module.state_dict()
        moved = {
            n
            for n, _ in cell.model.module.named_parameters()
            if not torch.equal(before[n], after[n])
        }
        if epoch < 2:
            assert moved == head, epoch
        else:
            assert moved == {n for n, _ in cell.model.module.named_parameters()}, epoch
        assert cell.may_stop(epoch) == (epoch >= 2)
        assert cell.strategy.selection_restarts(epoch) == (epoch == 2)


def test_no_strategy_name_outside_the_registry():
    """The planner, the loop, the cost model, the report and the search read strategies'
    traits, never their names; the reference strategy is declared once (``REFERENCE``)."""
    import re
    from pathlib import Path

    import medft

    package = Path(medft.__file__).parent
    for path in package.rglob("*.py"):
        if path.parent.name == "strategies":
            continue
        source = path.read_text()
        for name in strategy_names():
            assert not re.search(rf"([\"']){re.escape(name)}\1", source), (path, name)


def test_the_schema_lists_the_registry_and_the_options_defaults():
    from dataclasses import fields
    from pathlib import Path

    import yaml

    schema = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text()
    )["properties"]
    assert schema["strategies"]["default"] == "paper"  # the registry's names (workflow.py)
    options = schema["strategy_options"]["properties"]
    assert {f.name: f.default for f in fields(StrategyOptions)} == {
        k: v["default"] for k, v in options.items()
    }
    choices = {f.name: f.metadata["choices"] for f in fields(StrategyOptions)}
    assert {k: tuple(v["enum"]) for k, v in options.items() if "enum" in v} == {
        k: v for k, v in choices.items() if v
    }
    minima = {f.name: f.metadata["min"] for f in fields(StrategyOptions)}
    assert {k: v.get("minimum") for k, v in options.items()} == minima
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    assert config["strategies"] == "paper"
    assert config["strategy_options"] == {f.name: f.default for f in fields(StrategyOptions)}
    from medft.engine import TrainConfig

    run = {f.name: f.default for f in fields(TrainConfig)}
    for key, schema_key in (
        ("epochs", "epochs"),
        ("patience", "patience"),
        ("batch_size", "batch_size"),
        ("early_stop_on", "early_stop_on"),
        ("weights", "weights"),
        ("workers", "loader_workers"),
    ):
        assert run[key] == schema[schema_key]["default"], key

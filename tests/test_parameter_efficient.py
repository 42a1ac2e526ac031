"""BitFit and LoRA: what trains, LoRA's merged weights, and the trainable share each run
records."""

from __future__ import annotations

import json

import pytest
import torch

from medft.engine import Cell, TrainConfig
from medft.strategies import StrategyOptions

pytest.importorskip("peft", reason="LoRA needs peft (make installs it)")


def cell(data, out, strategy, weights) -> Cell:
    config = TrainConfig(
        data=str(data),
        strategy=strategy,
        out=str(out),
        model="test_resnet",
        weights=weights,
        lr=1e-2,
        seed=0,
        epochs=2,
        batch_size=16,
        options=StrategyOptions(lora_rank=2),
    )
    return Cell(config)


def test_lora_merged_for_evaluation_gives_the_unmerged_outputs(
    tiny_datasets, tiny_weights, tmp_path
):
    run = cell(tiny_datasets["binary"], tmp_path / "run", "LoRA", tiny_weights)
    run.build()
    module = run.model.module
    with torch.no_grad():  # a non-zero update: B starts at zero
        for name, param in module.named_parameters():
            if ".lora_B." in name:
                param.normal_(0, 0.05)
    module.eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        unmerged = module(images)
        with run.strategy.merged():
            merged = module(images)
            weight = dict(module.named_parameters())["conv1.0.base_layer.weight"].clone()
        after = module(images)
    assert torch.allclose(merged, unmerged, atol=1e-5)
    assert torch.allclose(after, unmerged, atol=1e-6)  # unmerged again (to float rounding)
    # Merging changed the layer's own weight: the evaluation ran on deployed weights.
    assert not torch.equal(weight, dict(module.named_parameters())["conv1.0.base_layer.weight"])


@pytest.mark.parametrize("strategy, most", [("FT", 1.0), ("BitFit", 0.05), ("LoRA", 0.5)])
def test_each_run_records_its_trainable_share(
    strategy, most, tiny_datasets, tiny_weights, tmp_path
):
    summary = cell(tiny_datasets["binary"], tmp_path / strategy, strategy, tiny_weights).run()
    recorded = json.loads((tmp_path / strategy / "metrics.json").read_text())
    assert recorded["trainable_share"] == summary["trainable_share"]
    assert 0 < summary["trainable_share"] <= most
    if strategy == "FT":
        assert summary["trainable_share"] == 1.0


def test_the_tables_caption_gives_each_partial_strategys_trainable_share():
    import pandas as pd

    from medft.report.evidence import DatasetReport, Evidence

    chosen = pd.DataFrame(
        {
            "strategy": ["FT", "FT", "BitFit", "BitFit", "LoRA"],
            "model": ["resnet50"] * 5,
            "trainable_share": [1.0, 1.0, 0.0013, 0.0013, 0.0265],
        }
    )
    note = DatasetReport(Evidence(summary=pd.DataFrame(), chosen=chosen)).trainable
    assert note == (
        " Trainable share of the model's parameters: BitFit 0.13% (resnet50), "
        "LoRA 2.65% (resnet50)."
    )
    old = chosen.assign(trainable_share=None)  # runs before the share was recorded
    assert DatasetReport(Evidence(summary=pd.DataFrame(), chosen=old)).trainable == ""

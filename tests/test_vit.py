"""ViT backbones: the patch embedding, groups of transformer blocks and the head as blocks, so
that every strategy applies; LoRA adapts attention. On timm's tiny, randomly initialised
test_vit (6 transformer blocks), offline."""

from __future__ import annotations

import pytest

from medft.data import synthetic
from medft.data.preprocess import Preprocess
from medft.engine import Cell, TrainConfig
from medft.models import create_model
from medft.strategies import StrategyOptions, strategy_names


@pytest.fixture(scope="module")
def vit_data(tmp_path_factory):
    """test_vit takes 160 px images (its position embedding is fixed)."""
    root = tmp_path_factory.mktemp("vit")
    return synthetic.prepare("synth-nodule", Preprocess(160, 160), root / "nodule", n_images=30)


def test_a_vit_has_patch_embedding_transformer_groups_and_head():
    model = create_model("test_vit", 2, "none")
    names = [b.name for b in model.blocks]
    assert names == ["patch_embed", *(f"transformer{k}" for k in range(4)), "head"]
    assert {"cls_token", "pos_embed"} <= set(model.blocks[0].params)
    # 6 transformer blocks in 4 contiguous groups: 2, 2, 1, 1.
    firsts = [b.params[0].split(".")[1] for b in model.blocks[1:5]]
    assert firsts == ["0", "2", "4", "5"]
    assert model.blocks[-1].params == ("head.weight", "head.bias")


def vit_config(data, out, strategy) -> TrainConfig:
    return TrainConfig(
        data=str(data),
        strategy=strategy,
        out=str(out),
        model="test_vit",
        weights="none",
        lr=1e-3,
        seed=0,
        epochs=2,
        batch_size=8,
        options=StrategyOptions(lp_feature_cache=False, lpft_lp_epochs=1, rgn_batches=1),
    )


def test_lora_adapts_attention_and_mlp(vit_data, tmp_path):
    cell = Cell(vit_config(vit_data, tmp_path, "LoRA"))
    cell.build()
    adapted = {
        n.split(".lora_")[0] for n, _ in cell.model.module.named_parameters() if ".lora_A." in n
    }
    assert {"blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1"} <= adapted
    assert "head" not in adapted


@pytest.mark.slow  # 11 ViT runs at 160 px: about 90 s on 2 cores
@pytest.mark.parametrize("strategy", strategy_names())
def test_every_strategy_trains_a_vit(strategy, vit_data, tmp_path):
    config = vit_config(vit_data, tmp_path / strategy, strategy)
    summary = Cell(config).run()
    assert summary["epochs_trained"] == 2 and 0 < summary["trainable_share"] <= 1

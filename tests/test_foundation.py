"""Foundation backbones (medft.foundation): open_clip and transformers towers built from small
random configurations saved the way each library saves them — no download."""

import json

import numpy as np
import pytest
import torch

from medft.foundation import BACKBONES, Backbone, register_config_backbones
from medft.models import create_model

open_clip = pytest.importorskip("open_clip", reason="the openclip extra is not installed")
transformers = pytest.importorskip("transformers", reason="the transformers extra is missing")

SIZE = 32
TEXT = {"context_length": 8, "vocab_size": 100, "width": 16, "heads": 2, "layers": 1}
# BiomedCLIP's image tower: a timm ViT trunk with a linear projection (its open_clip config's
# vision_cfg with a tiny ViT; open_clip builds timm trunks at their own 224 px);
# OpenAI CLIP's: open_clip's own VisionTransformer.
BIOMEDCLIP_SIZE = 224
BIOMEDCLIP_VISION = {
    "timm_model_name": "vit_tiny_patch16_224",
    "timm_model_pretrained": False,
    "timm_pool": "",
    "timm_proj": "linear",
    "image_size": BIOMEDCLIP_SIZE,
}
CLIP_VISION = {"layers": 6, "width": 32, "head_width": 16, "patch_size": 8, "image_size": SIZE}
CLIP_MEAN, CLIP_STD = [0.4815, 0.4578, 0.4082], [0.2686, 0.2613, 0.2758]
RAD_DINO_MEAN, RAD_DINO_STD = [0.5307] * 3, [0.2583] * 3


def open_clip_folder(folder, vision):
    """A folder as open_clip's hub uploads are laid out: open_clip_config.json + weights."""
    from safetensors.torch import save_file

    folder.mkdir()
    model_cfg = {"embed_dim": 16, "vision_cfg": vision, "text_cfg": TEXT}
    model = open_clip.model.CLIP(**model_cfg)
    preprocess = {"size": vision["image_size"], "mean": CLIP_MEAN, "std": CLIP_STD}
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    save_file(model.state_dict(), folder / "open_clip_model.safetensors")
    return str(folder)


def rad_dino_folder(folder):
    """A DINOv2 the RAD-DINO way (transformers' save_pretrained, its image processor beside)."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=6,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=SIZE,
        patch_size=8,
    )
    Dinov2Model(config).save_pretrained(folder)
    BitImageProcessor(
        size={"shortest_edge": SIZE + 4},
        crop_size={"height": SIZE, "width": SIZE},
        do_center_crop=True,
        image_mean=RAD_DINO_MEAN,
        image_std=RAD_DINO_STD,
    ).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    root = tmp_path_factory.mktemp("towers")
    folders = {
        "tiny-biomedclip": ("open_clip", open_clip_folder(root / "bc", BIOMEDCLIP_VISION)),
        "tiny-clip": ("open_clip", open_clip_folder(root / "clip", CLIP_VISION)),
        "tiny-rad-dino": ("transformers", rad_dino_folder(root / "rd")),
    }
    register_config_backbones(
        {name: {"source": source, "id": folder} for name, (source, folder) in folders.items()}
    )
    return folders


NAMES = ["tiny-biomedclip", "tiny-clip", "tiny-rad-dino"]
# Six transformer layers each: the embeddings, four groups of layers, the rest with the head.
BLOCKS = ["embeddings", "transformer0", "transformer1", "transformer2", "transformer3", "head"]


@pytest.mark.parametrize("name", NAMES)
def test_a_saved_folder_loads_back_to_the_librarys_own_outputs(towers, name):
    source, folder = towers[name]
    built = create_model(name, 3, "imagenet")
    images = torch.randn(2, 3, built.preprocess.crop, built.preprocess.crop)
    built.module.eval()
    if source == "open_clip":
        reference = open_clip.create_model(f"local-dir:{folder}").visual.eval()
        expected = reference(images)
    else:
        reference = transformers.AutoModel.from_pretrained(folder).eval()
        expected = reference(pixel_values=images).pooler_output
    with torch.no_grad():
        assert (
            torch.allclose(built.module.tower(images), expected, atol=1e-6)
            if source == ("open_clip")
            else torch.allclose(built.module.tower(pixel_values=images).pooler_output, expected)
        )
        assert built.module(images).shape == (2, 3)
    # weights: none keeps the architecture, not the weights
    random = create_model(name, 3, "none").module.eval()
    with torch.no_grad():
        assert not torch.allclose(random(images), built.module(images))


@pytest.mark.parametrize("name", NAMES)
def test_blocks_follow_the_transformer_layers_and_the_head_is_last(towers, name):
    built = create_model(name, 2, "none")
    names = [b.name for b in built.blocks]
    assert names == BLOCKS
    assert set(built.head_params) <= set(built.blocks[-1].params)
    # Whole layers per group, in order; the earlier groups one larger (12 layers: 3 each).
    from medft.foundation.towers import layer_list

    prefix = f"tower.{layer_list(built.module.tower)}."
    groups = [
        sorted({int(p[len(prefix) :].split(".")[0]) for p in block.params})
        for block in built.blocks[1:5]
    ]
    depth = sum(len(g) for g in groups)
    assert [i for g in groups for i in g] == list(range(depth))
    assert [len(g) for g in groups] == [-(-(depth - k) // 4) for k in range(4)]
    from medft.architectures import block_count

    assert block_count(name) == len(built.blocks)


def test_preprocessing_comes_from_the_models_own_config_and_is_recorded(towers):
    clip = create_model("tiny-clip", 2, "none")
    assert clip.mean == pytest.approx(CLIP_MEAN) and clip.std == pytest.approx(CLIP_STD)
    rad = create_model("tiny-rad-dino", 2, "none")
    assert rad.mean == pytest.approx(RAD_DINO_MEAN) and rad.preprocess.crop == SIZE
    assert rad.preprocess.resize == SIZE + 4
    record = rad.provenance
    assert record["backbone"]["source"] == "transformers"
    assert "image processor" in record["preprocessing"]["from"]


@pytest.mark.parametrize("name", NAMES)
def test_lp_features_an_ft_step_and_a_lora_step_run_on_each_tower(towers, name):
    from medft.features import head_inputs
    from medft.strategies import STRATEGIES, StrategyOptions
    from medft.strategies.base import EpochContext

    size = create_model(name, 2, "none").preprocess.crop
    images, labels = torch.randn(4, 3, size, size), torch.tensor([0, 1, 0, 1])
    for strategy_name in ("FT", "LoRA"):
        built = create_model(name, 2, "none", seed=0)
        info = STRATEGIES.get(strategy_name)
        options = StrategyOptions()
        info.cls.extend_model(built, options)
        strategy = info.cls(built, 1e-2, options)
        optimizer = torch.optim.Adam(strategy.param_groups(), lr=1e-2)
        strategy.on_epoch_start(EpochContext(0, optimizer, None))
        trained = {
            n: p.detach().clone() for n, p in built.module.named_parameters() if p.requires_grad
        }
        built.module.train()
        loss = torch.nn.functional.cross_entropy(built.module(images), labels)
        loss.backward()
        optimizer.step()
        moved = [
            n
            for n, p in built.module.named_parameters()
            if n in trained and not torch.equal(p, trained[n])
        ]
        assert any(n.startswith("tower.") for n in moved), strategy_name
        if strategy_name == "LoRA":
            assert all("lora_" in n for n in moved if n.startswith("tower."))
            attention = [n for n in moved if "attn" in n or "attention" in n]
            assert attention, "LoRA adapts the attention layers"
    built = create_model(name, 2, "none")

    class Split:  # a ShardDataset's batch interface
        split, ids, targets, groups = "train", np.arange(4), labels, np.arange(4)

        def batches(self, batch_size, shuffle_seed=None, device=None):
            yield images, labels

        def num_batches(self, batch_size):
            return 1

    cached = head_inputs(built, Split(), 4, torch.device("cpu"))
    assert cached.features.shape == (4, built.head_module.in_features)
    with torch.no_grad():
        logits = built.head_module(cached.features)
        assert torch.allclose(logits, built.module.eval()(images), atol=1e-5)


def test_a_config_backbone_travels_to_the_job_as_a_record(towers):
    _, folder = towers["tiny-rad-dino"]
    record = Backbone(source="transformers", id=folder).record()
    # A job process knows nothing of the config: the record alone builds the model.
    assert "someone-elses" not in BACKBONES
    built = create_model("someone-elses", 2, "none", backbone=record)
    assert len(built.blocks) == 6 and built.provenance["backbone"]["id"] == folder


def test_a_name_defined_twice_differently_is_refused(towers):
    with pytest.raises(ValueError, match="already a built-in backbone"):
        register_config_backbones({"rad-dino": {"source": "transformers", "id": "elsewhere"}})
    assert BACKBONES.get("rad-dino").id == "microsoft/rad-dino"


def test_without_the_extra_a_config_naming_it_fails_in_one_line(towers, monkeypatch):
    import importlib.util

    from medft.architectures import check_model_name

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "open_clip" else real(n, *a)
    )
    with pytest.raises(ValueError) as error:
        check_model_name("biomedclip")
    message = str(error.value)
    assert "\n" not in message and "pip install 'medft[openclip]'" in message


def test_medft_blocks_prints_a_biomedclip_and_a_rad_dino_shaped_model(towers, tmp_path, capsys):
    from medft.cli import main

    config = tmp_path / "mine.yaml"
    config.write_text(
        "backbones:\n"
        + "".join(
            f"  {name}: {{source: {source}, id: {folder}}}\n"
            for name, (source, folder) in towers.items()
        )
    )
    for name in ("tiny-biomedclip", "tiny-rad-dino"):
        assert main(["blocks", name, "--configfile", str(config)]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert [line.split()[1] for line in lines[:6]] == BLOCKS
        assert "head: head (head.weight, head.bias)" in out


def test_medft_plan_prices_the_foundation_config_with_its_sources(monkeypatch, capsys):
    from pathlib import Path

    from medft.cli import main

    monkeypatch.chdir(Path(__file__).parent.parent)
    assert main(["plan", "--configfile", "config/foundation.yaml"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.split("\n\n")[0].splitlines() if line.startswith("| breast")]
    assert [row.split("|")[2].strip() for row in rows] == ["dinov2-small", "biomedclip", "rad-dino"]
    assert all("GFLOPs ratio" in row for row in rows)
    # RAD-DINO's 518-px inputs cost most: its GPU-hours are the largest
    hours = [float(row.split("|")[7]) for row in rows]
    assert hours[2] == max(hours)


def test_an_unreachable_hub_model_stops_in_one_line_naming_fetch_weights(monkeypatch):
    import huggingface_hub.constants

    # A compute node without internet (the constant is read when huggingface_hub is imported).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = Backbone(source="transformers", id="nobody/not-cached-anywhere")
    with pytest.raises(Exception) as error:
        create_model("uncached", 2, "imagenet", backbone=spec.record())
    message = str(error.value)
    assert "\n" not in message and "medft fetch-weights" in message
    gated = Backbone(source="transformers", id="nobody/not-cached-anywhere", gated=True)
    with pytest.raises(Exception) as error:
        create_model("gated", 2, "imagenet", backbone=gated.record())
    assert "is gated: accept its licence" in str(error.value) and "HF_TOKEN" in str(error.value)


def test_the_report_reads_each_runs_weights_licence_and_preprocessing(tmp_path):
    from medft.report.collect import collect_runs

    spec = BACKBONES.get("rad-dino")
    summary = {
        "config": {
            "model": "rad-dino",
            "strategy": "FT",
            "lr": 1e-4,
            "seed": 0,
            "weights": "imagenet",
        },
        "dataset": "xrays",
        "task": "binary",
        "main_metric": "auroc",
        "best_epoch": 3,
        "epochs_trained": 5,
        "metrics": {"test": {"auroc": 0.9}},
        "model_provenance": {
            "source": "transformers",
            "backbone": spec.record(),
            "preprocessing": {
                "resize": 518,
                "crop": 518,
                "mean": [0.5307] * 3,
                "std": [0.2583] * 3,
                "from": "microsoft/rad-dino's image processor",
            },
        },
    }
    (tmp_path / "metrics.json").write_text(json.dumps(summary))
    row = collect_runs([tmp_path / "metrics.json"]).iloc[0]
    assert row["weights_from"] == "microsoft/rad-dino" and row["source"] == "transformers"
    assert row["licence"].startswith("MSRLA")
    assert row["preprocessing"] == (
        "518 px (shorter side 518), mean (0.531, 0.531, 0.531), std (0.258, 0.258, 0.258): "
        "microsoft/rad-dino's image processor"
    )


def test_medft_list_models_names_the_foundation_backbones_with_licences(capsys):
    from medft.cli import main

    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "rad-dino  (transformers: microsoft/rad-dino; licence MSRLA" in out
    assert "biomedclip  (open_clip: hf-hub:microsoft/BiomedCLIP" in out

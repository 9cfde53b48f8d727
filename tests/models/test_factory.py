import numpy as np
import pytest
import torch

from ekya.errors import EkyaError
from ekya.models.factory import (
    MODEL_NAMES,
    build_model,
    freeze_all_but_last,
    images_to_tensor,
    num_layer_groups,
    set_training_mode,
    with_new_head,
)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_model_classifies_small_crops_into_six_classes(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32)).shape == (2, 6)
        assert model(torch.rand(2, 3, 16, 16)).shape == (2, 6)


def test_unknown_model_name_lists_valid_names():
    with pytest.raises(EkyaError, match="resnet18.*mobilenet_v2.*shufflenet_v2_x0_5"):
        build_model("vgg16")


def test_head_has_hidden_layer_of_requested_size_or_single_linear():
    model = build_model("resnet18", num_classes=4, hidden_size=32)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(512, 32), (32, 4)]
    single = build_model("resnet18", hidden_size=0)
    assert isinstance(single.head, torch.nn.Linear) and single.head.out_features == 6
    with pytest.raises(EkyaError, match="hidden_size"):
        build_model("resnet18", hidden_size=-1)


def _trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_freezing_head_only_leaves_exactly_the_head_trainable():
    model = build_model("resnet18")
    freeze_all_but_last(model, 1)
    assert _trainable_names(model) == {name for name, _ in model.named_parameters() if name.startswith("head.")}


def test_freezing_two_groups_trains_head_and_last_stage():
    model = build_model("resnet18")
    trainable = freeze_all_but_last(model, 2)
    expected = {n for n, _ in model.named_parameters() if n.startswith(("head.", "backbone.layer4."))}
    assert _trainable_names(model) == expected
    assert len(trainable) == len(expected)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_all_and_too_many_groups_train_every_parameter(name):
    model = build_model(name)
    everything = {n for n, _ in model.named_parameters()}
    freeze_all_but_last(model, "all")
    assert _trainable_names(model) == everything
    freeze_all_but_last(model, 1)
    freeze_all_but_last(model, num_layer_groups(model) + 5)
    assert _trainable_names(model) == everything


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layer_groups_cover_every_parameter_once(name):
    model = build_model(name)
    grouped = [id(p) for group in model.layer_groups() for module in group for p in module.parameters()]
    assert len(grouped) == len(set(grouped)) == len(list(model.parameters()))


def test_freezing_rejects_bad_counts():
    model = build_model("shufflenet_v2_x0_5")
    for bad in (0, -1, "some", 1.5, True):
        with pytest.raises(EkyaError, match="train_layers"):
            freeze_all_but_last(model, bad)


def test_frozen_groups_stay_in_eval_mode_during_training():
    model = build_model("resnet18")
    set_training_mode(model, 2)
    assert model.head.training and model.backbone.layer4.training
    assert not model.backbone.layer3.training and not model.backbone.bn1.training


def test_new_head_keeps_backbone_weights_and_leaves_original_untouched():
    torch.manual_seed(0)
    model = build_model("resnet18", hidden_size=64)
    replaced = with_new_head(model, 128)
    assert replaced.hidden_size == 128 and model.hidden_size == 64
    assert replaced.head[0].out_features == 128 and model.head[0].out_features == 64
    for (name, original), (_, copied) in zip(model.backbone.state_dict().items(), replaced.backbone.state_dict().items()):
        assert torch.equal(original, copied), name
    replaced.backbone.conv1.weight.data.zero_()
    assert model.backbone.conv1.weight.abs().sum() > 0


def test_images_to_tensor_scales_to_unit_range_and_lowers_resolution():
    images = np.zeros((2, 3, 32, 32), dtype=np.uint8)
    images[:, :, :, ::2] = 255  # one-pixel stripes vanish at 16 pixels
    full = images_to_tensor(images)
    assert full.dtype == torch.float32 and full.shape == (2, 3, 32, 32)
    assert float(full.min()) == 0.0 and float(full.max()) == 1.0
    low = images_to_tensor(images, resolution=16)
    assert low.shape == (2, 3, 32, 32)
    assert float(low.max() - low.min()) < 0.2  # was 1.0 at full resolution
    assert torch.equal(images_to_tensor(images, resolution=32), full)
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(images.astype(np.float32))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_frozen_prefix_then_the_rest_is_the_whole_forward_pass(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    images = torch.rand(3, 3, 32, 32)
    expected = model(images)
    counts = []
    for train_layers in [*range(1, num_layer_groups(model) + 2), "all"]:
        frozen_steps = model.frozen_step_count(train_layers)
        counts.append(frozen_steps)
        with torch.no_grad():
            logits = model.forward_from(model.frozen_features(images, frozen_steps), frozen_steps)
        assert torch.allclose(logits, expected, atol=1e-6), train_layers
    assert counts[-1] == 0 and counts[-2] == 0  # "all" and more groups than the model has: nothing frozen
    assert counts[0] > counts[1] > 0  # head only freezes the whole backbone; one more group freezes less
    assert counts == sorted(counts, reverse=True)

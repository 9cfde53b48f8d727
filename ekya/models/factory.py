"""Edge models: torchvision backbones adapted to small object crops, with a hidden-layer head.

An :class:`EdgeModel` is a torchvision backbone (random weights, nothing downloaded) whose
classifier is replaced by a head ``Linear(features, hidden_size) + ReLU +
Linear(hidden_size, num_classes)``; ``hidden_size`` is the paper's "size of the last hidden
layer" (0 means a single ``Linear``). The model takes float images in [0, 1]
(:func:`images_to_tensor` converts a window's uint8 crops) and normalises them itself.

Each model is cut into *layer groups*, listed from the head backwards; a retraining
configuration trains the last ``train_layers`` groups and freezes the rest
(:func:`freeze_all_but_last`).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional

from ekya.errors import EkyaError
from ekya.models.names import MODEL_NAMES

#: Per-channel mean and standard deviation of RGB images in [0, 1] (ImageNet statistics).
_CHANNEL_MEAN = (0.485, 0.456, 0.406)
_CHANNEL_STD = (0.229, 0.224, 0.225)


def _flatten(features: torch.Tensor) -> torch.Tensor:
    return torch.flatten(features, 1)


def _average_pool_flatten(features: torch.Tensor) -> torch.Tensor:
    return torch.flatten(functional.adaptive_avg_pool2d(features, (1, 1)), 1)


def _spatial_mean(features: torch.Tensor) -> torch.Tensor:
    return features.mean([2, 3])


# Each builder returns (backbone, feature size, layer groups from the last stage backwards,
# forward steps): the steps (a submodule's path or a parameter-free function) composed in
# order are the backbone's forward pass, so a frozen prefix can be run once and cached.
def _resnet18() -> tuple[nn.Module, int, list[list[str]], list]:
    backbone = torchvision.models.resnet18(weights=None)
    # A 3x3 stem: a 7x7 kernel is coarse for 32-pixel crops. Stride 2 and the max-pool stay,
    # which keeps training affordable on a CPU (a stride-1 stem costs ~3x more).
    backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
    features = backbone.fc.in_features
    backbone.fc = nn.Identity()
    groups = [["layer4"], ["layer3"], ["layer2"], ["layer1"], ["conv1", "bn1"]]
    # torchvision's ResNet._forward_impl, step by step (fc is the Identity).
    steps = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", _flatten]
    return backbone, features, groups, steps


def _mobilenet_v2() -> tuple[nn.Module, int, list[list[str]], list]:
    backbone = torchvision.models.mobilenet_v2(weights=None)
    features = backbone.classifier[-1].in_features
    backbone.classifier = nn.Identity()
    # Dropout of the ImageNet classifier is dropped with it; stages follow the channel widths.
    stages = [(17, 19), (14, 17), (11, 14), (7, 11), (4, 7), (0, 4)]
    groups = [[f"features.{index}" for index in range(start, stop)] for start, stop in stages]
    # torchvision's MobileNetV2._forward_impl, step by step (the classifier is the Identity).
    steps = [f"features.{index}" for index in range(len(backbone.features))] + [_average_pool_flatten]
    return backbone, features, groups, steps


def _shufflenet_v2_x0_5() -> tuple[nn.Module, int, list[list[str]], list]:
    backbone = torchvision.models.shufflenet_v2_x0_5(weights=None)
    # Its stem is already a 3x3 conv; dropping the max-pool keeps 2x2 maps in the last stage.
    backbone.maxpool = nn.Identity()
    features = backbone.fc.in_features
    backbone.fc = nn.Identity()
    groups = [["conv5"], ["stage4"], ["stage3"], ["stage2"], ["conv1"]]
    # torchvision's ShuffleNetV2._forward_impl, step by step (fc is the Identity).
    steps = ["conv1", "maxpool", "stage2", "stage3", "stage4", "conv5", _spatial_mean]
    return backbone, features, groups, steps


#: The builder of each of :data:`~ekya.models.names.MODEL_NAMES` (the names accepted by :func:`build_model`).
_BACKBONES: dict[str, Callable[[], tuple[nn.Module, int, list[list[str]], list]]] = {
    "resnet18": _resnet18,
    "mobilenet_v2": _mobilenet_v2,
    "shufflenet_v2_x0_5": _shufflenet_v2_x0_5,
}


def build_head(features: int, hidden_size: int, num_classes: int) -> nn.Module:
    """``Linear(features, hidden_size) + ReLU + Linear(hidden_size, num_classes)``; one Linear if hidden_size is 0."""
    if hidden_size < 0:
        raise EkyaError(f"hidden_size must be >= 0 (0 = no hidden layer), got {hidden_size}")
    if hidden_size == 0:
        return nn.Linear(features, num_classes)
    return nn.Sequential(nn.Linear(features, hidden_size), nn.ReLU(inplace=True), nn.Linear(hidden_size, num_classes))


class EdgeModel(nn.Module):
    """A backbone plus a hidden-layer head, taking float RGB images in [0, 1] of shape (N, 3, H, W).

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: number of output classes.
        hidden_size: neurons of the head's hidden layer (0 = a single linear layer).
    """

    def __init__(self, name: str, num_classes: int = 6, hidden_size: int = 64) -> None:
        super().__init__()
        if name not in _BACKBONES:
            raise EkyaError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")
        if num_classes < 1:
            raise EkyaError(f"num_classes must be >= 1, got {num_classes}")
        self.name = name
        self.num_classes = int(num_classes)
        self.hidden_size = int(hidden_size)
        self.backbone, self.feature_size, self._backbone_groups, self._forward_steps = _BACKBONES[name]()
        self.head = build_head(self.feature_size, self.hidden_size, self.num_classes)
        self.register_buffer("channel_mean", torch.tensor(_CHANNEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("channel_std", torch.tensor(_CHANNEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (N, num_classes) of float images in [0, 1]."""
        return self.head(self.backbone((images - self.channel_mean) / self.channel_std))

    def frozen_step_count(self, train_layers: int | str) -> int:
        """How many leading steps of the backbone's forward pass ``train_layers`` leaves frozen.

        0 when everything trains; every step when only the head trains. The output of the
        frozen steps does not change while training (frozen batch norms stay in eval mode,
        see :func:`set_training_mode`), so it can be computed once per crop
        (:meth:`frozen_features`) and training runs :meth:`forward_from` on it.
        """
        if train_layers == "all":
            return 0
        # Group 0 is the head; backbone groups follow, from the last stage backwards.
        trained_paths = {path for group in self._backbone_groups[: int(train_layers) - 1] for path in group}
        for index, step in enumerate(self._forward_steps):
            if isinstance(step, str) and step in trained_paths:
                return index
        return len(self._forward_steps)

    def frozen_features(self, images: torch.Tensor, frozen_steps: int) -> torch.Tensor:
        """Output of the first ``frozen_steps`` backbone steps on float images in [0, 1] (normalised first)."""
        return self._run_steps((images - self.channel_mean) / self.channel_std, self._forward_steps[:frozen_steps])

    def forward_from(self, features: torch.Tensor, frozen_steps: int) -> torch.Tensor:
        """Class logits from :meth:`frozen_features` output: the remaining backbone steps, then the head."""
        return self.head(self._run_steps(features, self._forward_steps[frozen_steps:]))

    def _run_steps(self, features: torch.Tensor, steps: list) -> torch.Tensor:
        """``features`` through backbone forward ``steps`` (submodule paths or parameter-free functions), in order."""
        modules = dict(self.backbone.named_modules())
        for step in steps:
            features = modules[step](features) if isinstance(step, str) else step(features)
        return features

    def config(self) -> dict[str, object]:
        """What rebuilds this architecture: ``EdgeModel(**model.config())``."""
        return {"name": self.name, "num_classes": self.num_classes, "hidden_size": self.hidden_size}

    def layer_groups(self) -> list[list[nn.Module]]:
        """The trainable units, from the head backwards: ``[[head], [last stage], ..., [stem]]``."""
        modules = dict(self.backbone.named_modules())
        return [[self.head]] + [[modules[path] for path in group] for group in self._backbone_groups]


def build_model(name: str = "resnet18", num_classes: int = 6, hidden_size: int = 64) -> EdgeModel:
    """A randomly initialised edge model (seed the global torch RNG first for reproducible weights).

    Raises:
        EkyaError: for an unknown ``name`` (the message lists valid names) or a negative size.
    """
    return EdgeModel(name, num_classes=num_classes, hidden_size=hidden_size)


def num_layer_groups(model: EdgeModel) -> int:
    """How many layer groups ``model`` has (``train_layers="all"`` trains them all)."""
    return len(model.layer_groups())


def trained_groups(model: EdgeModel, train_layers: int | str) -> list[list[nn.Module]]:
    """The layer groups that ``train_layers`` (a count from the head backwards, or "all") selects."""
    groups = model.layer_groups()
    if train_layers == "all":
        return groups
    if isinstance(train_layers, bool) or not isinstance(train_layers, int) or train_layers < 1:
        raise EkyaError(f"train_layers must be an int >= 1 or 'all', got {train_layers!r}")
    return groups[: min(train_layers, len(groups))]


def freeze_all_but_last(model: EdgeModel, train_layers: int | str) -> list[nn.Parameter]:
    """Make only the last ``train_layers`` layer groups trainable, in place; returns their parameters.

    A count larger than the number of groups trains everything. Everything outside the
    groups (nothing, for the built-in models) stays trainable only with ``"all"``.
    """
    train_all = train_layers == "all"
    for parameter in model.parameters():
        parameter.requires_grad_(train_all)
    for group in trained_groups(model, train_layers):
        for module in group:
            for parameter in module.parameters():
                parameter.requires_grad_(True)
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def set_training_mode(model: nn.Module, train_layers: int | str, update_batch_norm: bool = False) -> None:
    """``model.train()`` for the trained groups and ``eval()`` elsewhere, so frozen batch-norm statistics stay fixed.

    Batch-norm layers of the trained groups update their statistics only with
    ``update_batch_norm`` (training from scratch). Fine-tuning keeps them fixed: with batch
    statistics of 32 crops during training and the drifted running statistics at serving
    time, all-layer retraining on the built-in dataset collapsed to the majority class
    (37% accuracy on the next window, 71% with fixed statistics; 76% vs 91% on another camera).
    """
    if train_layers == "all":
        model.train()
    else:
        model.eval()
        for group in trained_groups(model, train_layers):
            for module in group:
                module.train()
    if not update_batch_norm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


def with_new_head(model: EdgeModel, hidden_size: int) -> EdgeModel:
    """A copy of ``model`` with the same backbone weights and a freshly initialised head of ``hidden_size``."""
    copied = copy.deepcopy(model)
    copied.hidden_size = int(hidden_size)
    copied.head = build_head(copied.feature_size, copied.hidden_size, copied.num_classes).to(_device_of(model))
    return copied


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def synchronize_device(device: str | torch.device) -> None:
    """Wait for queued GPU work on ``device`` (no-op on CPU), so wall-clock timings are complete."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def images_to_tensor(images: np.ndarray, resolution: int | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """Float tensor in [0, 1] of uint8 crops (N, 3, H, W), optionally seen at a lower resolution.

    Args:
        images: uint8 array (N, 3, H, W).
        resolution: if given, each crop is downscaled to ``resolution x resolution`` pixels and
            scaled back up to (H, W) (bilinear), losing detail like a low-resolution camera feed.
        device: where the tensor goes.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be a uint8 array (N, 3, H, W), got {images.dtype} {images.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0)
    if resolution is None or len(tensor) == 0:
        return tensor
    if resolution < 1:
        raise EkyaError(f"resolution must be >= 1 pixel, got {resolution}")
    height, width = tensor.shape[-2:]
    if resolution >= max(height, width):
        return tensor
    small = functional.interpolate(tensor, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return functional.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)

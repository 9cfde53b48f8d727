"""The golden model: a large, accurate crop classifier whose predictions label the edge models' training data.

Golden models are torchvision ResNet-family classifiers (random initial weights, nothing
downloaded) adapted to small crops like the edge models: a 3x3 stride-2 stem instead of the
7x7 one. They are larger than any edge model (``resnet50`` by default; ``resnet18`` is only
there for fast tests; the Ekya paper uses ResNeXt101).

- :class:`GoldenModel`: the nn.Module, taking float RGB images in [0, 1] of shape (N, 3, H, W).
- :data:`GOLDEN_MODEL_NAMES` (from :mod:`ekya.models.names`): the architectures it accepts.
- :func:`save_golden_checkpoint`, :func:`load_golden_checkpoint`: its checkpoint files, tagged
  :data:`GOLDEN_CHECKPOINT_FORMAT`.

It is trained by :func:`ekya.training.golden.train_golden_model` and run on a window's crops by
:class:`ekya.inference.labelers.GoldenModelLabeler`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn

from ekya.data.base import CLASSES
from ekya.errors import EkyaError
from ekya.models.checkpoints import write_checkpoint
from ekya.models.names import GOLDEN_MODEL_NAMES

#: Tag stored in every golden-model checkpoint, so that other ``.pt`` files are recognised.
GOLDEN_CHECKPOINT_FORMAT = "ekya-golden-model/1"

#: Per-channel mean and standard deviation of RGB images in [0, 1] (ImageNet statistics, as the edge models).
_CHANNEL_MEAN = (0.485, 0.456, 0.406)
_CHANNEL_STD = (0.229, 0.224, 0.225)

#: The torchvision builder of each of :data:`~ekya.models.names.GOLDEN_MODEL_NAMES`.
_ARCHITECTURES: dict[str, Callable[..., torchvision.models.ResNet]] = {
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
    "resnet101": torchvision.models.resnet101,
    "resnext50_32x4d": torchvision.models.resnext50_32x4d,
    "resnext101_32x8d": torchvision.models.resnext101_32x8d,
    "wide_resnet50_2": torchvision.models.wide_resnet50_2,
}


class GoldenModel(nn.Module):
    """A torchvision ResNet-family classifier for small crops, taking float RGB images in [0, 1].

    It has the attributes :func:`ekya.training.retrain.retrain` relies on (``num_classes``,
    ``hidden_size`` = 0, :meth:`layer_groups`), so it is trained with the same code as the
    edge models.

    Args:
        name: one of :data:`GOLDEN_MODEL_NAMES`.
        num_classes: number of output classes.
    """

    def __init__(self, name: str = "resnet50", num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        if name not in _ARCHITECTURES:
            raise EkyaError(f"unknown golden model {name!r}; valid golden models: {', '.join(GOLDEN_MODEL_NAMES)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise EkyaError(f"num_classes must be an int >= 1, got {num_classes!r}")
        self.name = name
        self.num_classes = num_classes
        self.hidden_size = 0  # the classifier is a single linear layer
        network = _ARCHITECTURES[name](weights=None, num_classes=num_classes)
        # A 3x3 stride-2 stem (as the edge models): a 7x7 kernel is coarse for 32-pixel crops.
        network.conv1 = nn.Conv2d(3, network.conv1.out_channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.network = network
        self.register_buffer("channel_mean", torch.tensor(_CHANNEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("channel_std", torch.tensor(_CHANNEL_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits (N, num_classes) of float images in [0, 1] of shape (N, 3, H, W)."""
        return self.network((images - self.channel_mean) / self.channel_std)

    def config(self) -> dict[str, object]:
        """What rebuilds this architecture: ``GoldenModel(**model.config())``."""
        return {"name": self.name, "num_classes": self.num_classes}

    def layer_groups(self) -> list[list[nn.Module]]:
        """The trainable units, from the classifier backwards (training the golden model uses them all)."""
        net = self.network
        return [[net.fc], [net.layer4], [net.layer3], [net.layer2], [net.layer1], [net.conv1, net.bn1]]


def save_golden_checkpoint(model: GoldenModel, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights and architecture to ``path`` atomically (temp file + rename).

    A failed write leaves neither a temporary file nor a partial checkpoint behind.
    """
    return write_checkpoint(model, path, GOLDEN_CHECKPOINT_FORMAT)


def load_golden_checkpoint(path: str | os.PathLike, architecture: str | None = None, device: str = "cpu") -> GoldenModel:
    """The golden model stored at ``path``, in eval mode on ``device``.

    Args:
        path: checkpoint written by :func:`save_golden_checkpoint`.
        architecture: if given, the architecture the caller expects; a checkpoint of another one is an error.
        device: where the model goes.

    Raises:
        EkyaError: naming the file, if it is missing, unreadable, not a golden-model checkpoint,
            of another architecture than ``architecture``, or holds weights that do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise EkyaError(f"golden checkpoint {path}: no such file (train one with `python -m flows.train_golden`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged or foreign file
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        raise EkyaError(f"golden checkpoint {path}: unreadable ({type(error).__name__}: {first_line})") from error
    if not isinstance(payload, dict) or payload.get("format") != GOLDEN_CHECKPOINT_FORMAT:
        raise EkyaError(f"golden checkpoint {path}: not an Ekya golden-model checkpoint (expected format {GOLDEN_CHECKPOINT_FORMAT!r})")
    config = payload.get("config")
    if not isinstance(config, dict) or set(config) != {"name", "num_classes"} or not isinstance(payload.get("state_dict"), dict):
        raise EkyaError(f"golden checkpoint {path}: needs a config with name and num_classes and a state_dict, got config {config!r}")
    if architecture is not None and config["name"] != architecture:
        raise EkyaError(f"golden checkpoint {path}: architecture mismatch, it holds a {config['name']!r} but {architecture!r} is expected")
    if config["num_classes"] != len(CLASSES):
        raise EkyaError(f"golden checkpoint {path}: predicts {config['num_classes']} classes but the datasets have {len(CLASSES)}")
    try:
        golden = GoldenModel(str(config["name"]), num_classes=int(config["num_classes"]))
    except EkyaError as error:
        raise EkyaError(f"golden checkpoint {path}: {error}") from error
    try:
        golden.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0][:300] if str(error) else ""
        raise EkyaError(f"golden checkpoint {path}: weights do not fit a {config['name']} ({first_line})") from error
    return golden.to(device).eval()

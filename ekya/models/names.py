"""The names of the edge and golden architectures, importable without torch (config checks read them).

:mod:`ekya.models.factory` and :mod:`ekya.models.golden` build the models behind these names
(``tests/models`` checks that both lists match what they build).
"""

from __future__ import annotations

#: Edge models accepted by :func:`ekya.models.factory.build_model`.
MODEL_NAMES: tuple[str, ...] = ("resnet18", "mobilenet_v2", "shufflenet_v2_x0_5")

#: Golden-model architectures accepted by :class:`ekya.models.golden.GoldenModel`.
GOLDEN_MODEL_NAMES: tuple[str, ...] = (
    "resnet18",  # as small as the edge model: for tests only
    "resnet34",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "resnext101_32x8d",  # the paper's golden model
    "wide_resnet50_2",
)

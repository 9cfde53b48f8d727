"""Hand-built windows and an oracle model whose predictions are known in advance."""

import numpy as np
import pytest
import torch

from ekya.data.base import Window


class OracleModel(torch.nn.Module):
    """Predicts the class written into each crop's top-left red pixel as ``40 * class``."""

    num_classes = 6

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        code = images[:, 0, 0, 0:1] * 255.0 / 40.0
        return -(code - torch.arange(6, dtype=images.dtype)).abs()


def coded_window(labels_per_frame: list[list[int]], predicted_per_frame: list[list[int]] | None = None,
                 frame_ids: list[int] | None = None, timestamps: list[float] | None = None) -> Window:
    """One crop per listed label; the oracle predicts ``predicted_per_frame`` (default: the labels)."""
    predicted_per_frame = predicted_per_frame or labels_per_frame
    frame_ids = frame_ids if frame_ids is not None else list(range(len(labels_per_frame)))
    timestamps = timestamps if timestamps is not None else [float(f) for f in frame_ids]
    labels = np.array([label for frame in labels_per_frame for label in frame], dtype=np.int64)
    codes = np.array([p for frame in predicted_per_frame for p in frame], dtype=np.uint8)
    sizes = [len(frame) for frame in labels_per_frame]
    images = np.full((len(labels), 3, 8, 8), 100, dtype=np.uint8)
    images[:, 0, 0, 0] = codes * 40
    return Window(
        stream="coded", index=0, start_seconds=0.0, end_seconds=float(max(timestamps) + 1),
        images=images, labels=labels,
        frame_ids=np.repeat(np.array(frame_ids, dtype=np.int64), sizes),
        timestamps=np.repeat(np.array(timestamps, dtype=np.float64), sizes),
    )


@pytest.fixture
def oracle() -> OracleModel:
    return OracleModel()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch on one thread (faster on a small shared machine; results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Small hand-built windows for model tests (no dataset generator needed)."""

import numpy as np
import pytest
import torch

from ekya.data.base import Window


@pytest.fixture
def toy_window() -> Window:
    """24 random 32x32 crops, 4 per frame, labels 0..5."""
    rng = np.random.default_rng(0)
    n = 24
    return Window(
        stream="toy", index=0, start_seconds=0.0, end_seconds=10.0,
        images=rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8),
        labels=np.arange(n, dtype=np.int64) % 6,
        frame_ids=np.arange(n, dtype=np.int64) // 4,
        timestamps=(np.arange(n) // 4).astype(np.float64),
    )


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch on one thread: on a small shared machine, two threads that compete with other
    processes are several times slower (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

"""Learnable toy windows (:func:`tests.helpers.colour_pattern_window`) for the training tests."""

import pytest
import torch

from ekya.data.base import Window
from tests.helpers import colour_pattern_window


@pytest.fixture
def train_window() -> Window:
    return colour_pattern_window(96, seed=1)


@pytest.fixture
def test_window() -> Window:
    return colour_pattern_window(60, seed=2)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch on one thread: on a small shared machine, two threads that compete with other
    processes are several times slower (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

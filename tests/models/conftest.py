"""Shared settings for the model tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch on one thread: on a small shared machine, two threads that compete with other
    processes are several times slower (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

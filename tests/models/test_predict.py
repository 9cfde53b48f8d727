"""Predicting and evaluating: accuracy at a lower resolution, an empty window."""

import pytest
import torch

from ekya.data.base import Window
from ekya.models.factory import build_model
from ekya.models.predict import evaluate
from tests.helpers import colour_pattern_window


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("resnet18", hidden_size=16)


@pytest.fixture
def test_window() -> Window:
    return colour_pattern_window(60, seed=2)


def test_evaluate_at_lower_resolution_runs_and_empty_window_scores_zero(model, test_window):
    accuracy = evaluate(model, test_window, resolution=8)
    assert 0.0 <= accuracy <= 1.0
    empty = colour_pattern_window(3, seed=0)
    empty = type(empty)(stream="e", index=0, start_seconds=0, end_seconds=1, images=empty.images[:0],
                        labels=empty.labels[:0], frame_ids=empty.frame_ids[:0], timestamps=empty.timestamps[:0])
    assert evaluate(model, empty) == 0.0

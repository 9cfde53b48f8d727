"""Training the golden model: validation split, reported accuracies, determinism for a seed."""

import numpy as np
import pytest
import torch

from ekya.errors import EkyaError
from ekya.training.golden import split_crops, train_golden_model


def test_training_splits_the_crops_and_reports_per_epoch_accuracy(golden_trained):
    assert (golden_trained.num_train, golden_trained.num_validation) == (45, 15)
    assert len(golden_trained.validation_accuracy) == 1
    assert 0.0 <= golden_trained.validation_accuracy[0] <= 1.0 and 0.0 <= golden_trained.train_accuracy <= 1.0
    assert golden_trained.compute_seconds > 0
    assert not golden_trained.model.training


def test_training_is_deterministic_for_a_seed(golden_source, golden_trained):
    again = train_golden_model(golden_source.holdout(), architecture="resnet18", epochs=1, batch_size=16, validation_fraction=0.25, seed=3)
    for key, value in golden_trained.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key]), key


def test_split_crops_is_seeded_and_disjoint(golden_source):
    windows = [golden_source.window("cam0", 0), golden_source.window("cam0", 1)]
    train, validation = split_crops(windows, 0.25, seed=5)
    assert (len(train), len(validation)) == (90, 30)
    again, _ = split_crops(windows, 0.25, seed=5)
    np.testing.assert_array_equal(train.images, again.images)
    all_images = np.concatenate([w.images for w in windows]).reshape(120, -1)
    rows = {row.tobytes() for row in all_images}
    assert {r.tobytes() for r in train.images.reshape(90, -1)} | {r.tobytes() for r in validation.images.reshape(30, -1)} == rows
    assert split_crops(windows, 0.0, seed=5)[1] is None
    with pytest.raises(EkyaError, match=r"validation_fraction must be in \[0, 1\), got 1.0"):
        split_crops(windows, 1.0, seed=5)

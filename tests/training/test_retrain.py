import copy
import math

import numpy as np
import pytest
import torch

from ekya.errors import EkyaError
from ekya.models.factory import build_model
from ekya.models.predict import evaluate
from ekya.training.config import RetrainConfig
from ekya.training.retrain import FrozenPasses, concatenate_windows, retrain, subsample_indices
from tests.helpers import colour_pattern_window


def _config(**changes) -> RetrainConfig:
    fields = dict(name="t", train_layers=2, hidden_size=16, subsample=1.0, epochs=1, batch_size=16, learning_rate=0.01)
    return RetrainConfig(**{**fields, **changes})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("resnet18", hidden_size=16)


def _weights(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def test_same_seed_gives_same_weights_and_input_model_is_untouched(model, train_window):
    before = _weights(model)
    first = retrain(model, train_window, _config(subsample=0.5), seed=3)
    second = retrain(model, train_window, _config(subsample=0.5), seed=3)
    other = retrain(model, train_window, _config(subsample=0.5), seed=4)
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    assert any(not torch.equal(t, other.model.state_dict()[n]) for n, t in first.model.state_dict().items())
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items())
    assert first.model is not model and not first.model.training
    assert all(p.requires_grad for p in first.model.parameters())


def test_global_random_state_is_left_alone(model, train_window):
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    retrain(model, train_window, _config(train_layers=1, hidden_size=8), seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_frozen_groups_keep_weights_and_batch_norm_statistics(model, train_window):
    result = retrain(model, train_window, _config(train_layers=2), seed=0)
    after = result.model.state_dict()
    changed = {name for name, tensor in model.state_dict().items() if not torch.equal(tensor, after[name])}
    assert changed and all(name.startswith(("head.", "backbone.layer4.")) for name in changed)
    assert any(name.startswith("backbone.layer4.") for name in changed)


def test_counts_follow_subsample_epochs_and_batch_size(model, train_window):
    result = retrain(model, train_window, _config(train_layers=1, subsample=0.5, epochs=3, batch_size=20), seed=0)
    assert result.num_samples == 48 and result.epochs == 3
    assert result.samples_processed == 144
    assert result.optimizer_steps == 3 * math.ceil(48 / 20)
    assert result.compute_seconds > 0
    assert result.seconds_per_epoch == pytest.approx(result.compute_seconds / 3)


def test_cost_grows_with_epochs_and_data(model, train_window):
    small = retrain(model, train_window, _config(train_layers=1, subsample=0.25, epochs=1), seed=0)
    more_epochs = retrain(model, train_window, _config(train_layers=1, subsample=0.25, epochs=4), seed=0)
    more_data = retrain(model, train_window, _config(train_layers=1, subsample=1.0, epochs=1), seed=0)
    assert more_epochs.samples_processed == 4 * small.samples_processed
    assert more_data.samples_processed == 4 * small.samples_processed
    assert more_epochs.optimizer_steps == 4 * small.optimizer_steps
    assert (small.optimizer_steps, more_data.optimizer_steps) == (math.ceil(24 / 16), math.ceil(96 / 16))


def test_retraining_learns_colour_patterns_and_reports_validation_per_epoch(model, train_window, test_window):
    untrained = evaluate(model, test_window)
    result = retrain(model, train_window, _config(train_layers=1, epochs=4, learning_rate=0.05), seed=0,
                     validation=test_window, progress=True)
    assert len(result.validation_accuracy) == 4
    assert result.validation_accuracy[-1] == pytest.approx(evaluate(result.model, test_window))
    assert result.validation_accuracy[-1] >= 0.8 > untrained + 0.3
    assert result.train_accuracy > 0.5


def test_new_hidden_size_replaces_the_head(model, train_window):
    result = retrain(model, train_window, _config(train_layers=1, hidden_size=0), seed=0)
    assert result.model.hidden_size == 0 and isinstance(result.model.head, torch.nn.Linear)
    backbone_before = model.backbone.state_dict()
    assert all(torch.equal(t, backbone_before[n]) for n, t in result.model.backbone.state_dict().items())


def test_several_windows_are_trained_on_together(model):
    windows = [colour_pattern_window(30, seed=5), colour_pattern_window(18, seed=6, index=1)]
    images, labels = concatenate_windows(windows)
    assert images.shape == (48, 3, 16, 16) and np.array_equal(labels[30:], windows[1].labels)
    assert retrain(model, windows, _config(train_layers=1), seed=0).num_samples == 48


def test_bad_training_data(model, train_window):
    with pytest.raises(EkyaError, match="empty"):
        concatenate_windows([])
    with pytest.raises(EkyaError, match="different sizes"):
        concatenate_windows([train_window, colour_pattern_window(6, seed=0, size=8)])
    small = build_model("shufflenet_v2_x0_5", num_classes=3, hidden_size=0)
    with pytest.raises(EkyaError, match=r"labels must be in 0\.\.2"):
        retrain(small, train_window, _config(train_layers=1), seed=0)


def test_subsample_is_uniform_without_repeats_and_seeded():
    chosen = subsample_indices(1000, 0.3, seed=1)
    assert len(chosen) == 300 == len(np.unique(chosen))
    assert np.array_equal(chosen, subsample_indices(1000, 0.3, seed=1))
    assert not np.array_equal(chosen, subsample_indices(1000, 0.3, seed=2))
    assert 0.35 < chosen.mean() / 1000 < 0.65
    assert len(subsample_indices(5, 0.01, seed=0)) == 1


def test_frozen_layers_run_once_and_training_matches_a_full_forward_pass(model, train_window):
    """Head-only training on cached backbone features gives the weights of plain SGD through the whole model."""
    config = _config(train_layers=1, epochs=2)
    result = retrain(model, train_window, config, seed=5)
    assert 0 < result.feature_seconds <= result.compute_seconds
    assert retrain(model, train_window, _config(train_layers="all"), seed=5).feature_seconds == 0.0

    # The reference: the same seeded subsample, head and shuffling, with a full forward pass per step.
    reference = copy.deepcopy(model)
    from ekya.models.factory import freeze_all_but_last, images_to_tensor, set_training_mode
    from torch.nn import functional

    parameters = freeze_all_but_last(reference, 1)
    optimizer = torch.optim.SGD(parameters, lr=config.learning_rate, momentum=0.9)
    shuffler = torch.Generator().manual_seed(5)
    images, labels = concatenate_windows(train_window)
    chosen = subsample_indices(len(labels), config.subsample, 5)
    inputs, targets = images_to_tensor(images[chosen]), torch.from_numpy(labels[chosen].astype(np.int64))
    for _ in range(config.epochs):
        set_training_mode(reference, 1)
        for batch in torch.randperm(len(targets), generator=shuffler).split(config.batch_size):
            loss = functional.cross_entropy(reference(inputs[batch]), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for name, tensor in reference.state_dict().items():
        assert torch.allclose(tensor, result.model.state_dict()[name], atol=1e-5), name


def test_several_validation_points_per_epoch_are_placed_by_samples_seen(model, train_window, test_window):
    result = retrain(model, train_window, _config(epochs=2, subsample=0.5, batch_size=8), seed=1,
                     validation=test_window, validations_per_epoch=3)
    batches = math.ceil(result.num_samples / 8)
    assert len(result.validation_accuracy) == 2 * min(3, batches) == len(result.validation_sample_epochs)
    assert result.validation_sample_epochs[-1] == pytest.approx(2.0)
    assert np.all(np.diff(result.validation_sample_epochs) > 0)
    assert result.validation_seconds > 0
    # the frozen layers' pass over the validation crops is timed once, apart from the points
    head_only = retrain(model, train_window, _config(train_layers=1, epochs=2), seed=1, validation=test_window)
    assert 0 < head_only.validation_feature_seconds <= head_only.validation_seconds
    every_layer = retrain(model, train_window, _config(train_layers="all", epochs=1), seed=1, validation=test_window)
    assert every_layer.validation_feature_seconds == 0.0 < every_layer.validation_seconds
    plain = retrain(model, train_window, _config(epochs=2), seed=1, validation=test_window)
    assert plain.validation_sample_epochs == [1.0, 2.0]
    with pytest.raises(EkyaError, match="validations_per_epoch"):
        retrain(model, train_window, _config(), seed=1, validation=test_window, validations_per_epoch=0)


def test_fine_tuning_keeps_batch_norm_statistics_training_from_scratch_updates_them(model, train_window):
    def running_means(network):
        return [m.running_mean.clone() for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    fine_tuned = retrain(model, train_window, _config(train_layers="all"), seed=2)
    assert all(torch.equal(a, b) for a, b in zip(running_means(model), running_means(fine_tuned.model)))
    from_scratch = retrain(model, train_window, _config(train_layers="all"), seed=2, update_batch_norm=True)
    assert any(not torch.equal(a, b) for a, b in zip(running_means(model), running_means(from_scratch.model)))


def test_runs_of_one_frozen_depth_share_the_frozen_passes_and_train_the_same_models(model, train_window, test_window):
    passes = FrozenPasses(model, train_window, test_window)
    configs = [_config(name="a", train_layers=1, hidden_size=16), _config(name="b", train_layers=1, hidden_size=32, learning_rate=0.05),
               _config(name="c", train_layers=2)]
    shared = [retrain(model, train_window, config, seed=5, validation=test_window, frozen_passes=passes) for config in configs]
    alone = [retrain(model, train_window, config, seed=5, validation=test_window) for config in configs]
    for with_passes, without in zip(shared, alone):
        assert with_passes.validation_accuracy == without.validation_accuracy
        for name, tensor in with_passes.model.state_dict().items():
            assert torch.equal(tensor, without.model.state_dict()[name]), name
    first, second, other_depth = shared
    assert first.reused_passes == () and first.reused_seconds == 0.0
    assert second.reused_passes == ("train", "validation")
    # The reusing run reports the pass's seconds as its own and what it did not spend.
    assert second.feature_seconds == first.feature_seconds and second.validation_feature_seconds == first.validation_feature_seconds
    assert second.reused_seconds == pytest.approx(first.feature_seconds + first.validation_feature_seconds)
    assert other_depth.reused_passes == ()  # another depth, another pass
    # A run on a subsample pushes other crops through the frozen layers: it computes its own pass.
    assert retrain(model, train_window, _config(train_layers=1, subsample=0.5), seed=5, validation=test_window,
                   frozen_passes=passes).reused_passes == ("validation",)
    # Every layer trains: there is no frozen pass to share.
    assert retrain(model, train_window, _config(train_layers="all"), seed=5, validation=test_window,
                   frozen_passes=passes).reused_passes == ()


def test_frozen_passes_refuse_another_model_or_other_crops(model, train_window, test_window):
    passes = FrozenPasses(model, train_window, test_window)
    with pytest.raises(ValueError, match="own model"):
        retrain(copy.deepcopy(model), train_window, _config(train_layers=1), seed=0, validation=test_window, frozen_passes=passes)
    with pytest.raises(ValueError, match="own model"):
        retrain(model, test_window, _config(train_layers=1), seed=0, validation=test_window, frozen_passes=passes)

import pytest

from ekya.errors import EkyaError
from ekya.training.config import RetrainConfig, load_retrain_space

VALID = dict(name="g", train_layers=1, hidden_size=64, subsample=0.5, epochs=2, batch_size=16, learning_rate=0.01)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("subsample", 0, r"'g': subsample must be in \(0, 1\], got 0"),
        ("subsample", 1.5, r"subsample must be in \(0, 1\], got 1.5"),
        ("subsample", -0.2, "subsample"),
        ("epochs", 0, "'g': epochs must be an int >= 1, got 0"),
        ("epochs", 2.5, "epochs"),
        ("batch_size", 0, "'g': batch_size must be an int >= 1, got 0"),
        ("learning_rate", 0, "learning_rate must be > 0"),
        ("train_layers", 0, "train_layers must be an int >= 1 or 'all'"),
        ("train_layers", "most", "train_layers"),
        ("hidden_size", -1, "hidden_size must be an int >= 0"),
        ("hidden_size", True, "hidden_size"),
    ],
)
def test_invalid_field_is_named_with_valid_range(field, value, message):
    with pytest.raises(EkyaError, match=message):
        RetrainConfig(**{**VALID, field: value})


def test_valid_config_round_trips_through_dict():
    config = RetrainConfig(**{**VALID, "train_layers": "all", "subsample": 1.0})
    assert RetrainConfig(**config.to_dict()) == config


def test_grid_is_cartesian_with_generated_names_and_defaults():
    space = load_retrain_space([{"train_layers": [1, "all"], "hidden_size": 64, "subsample": [0.5, 1.0], "epochs": 3}])
    assert [c.name for c in space] == ["c00", "c01", "c02", "c03"]
    assert [(c.train_layers, c.subsample) for c in space] == [(1, 0.5), (1, 1.0), ("all", 0.5), ("all", 1.0)]
    assert {(c.batch_size, c.learning_rate, c.epochs) for c in space} == {(32, 0.01, 3)}


def test_explicit_entries_keep_their_names_and_mix_with_grids():
    space = load_retrain_space([
        {**VALID, "name": "cheap"},
        {"train_layers": 2, "hidden_size": [0, 8], "subsample": 1.0, "epochs": 1},
    ])
    assert [c.name for c in space] == ["cheap", "c01", "c02"]
    assert space[2].hidden_size == 8


@pytest.mark.parametrize(
    "entries, message",
    [
        ([{**VALID, "momentum": 0.9}], r"unknown fields \['momentum'\]"),
        ([{"train_layers": 1, "hidden_size": 64, "subsample": 0.5}], r"'c00': missing fields \['epochs'\]"),
        ([VALID, VALID], r"duplicate configuration names \['g'\]"),
        ([{**VALID, "epochs": [1, 2]}], "grid entry .* cannot carry a name"),
        ([], "empty"),
        (["c00"], "must be a mapping"),
    ],
)
def test_bad_space_specs(entries, message):
    with pytest.raises(EkyaError, match=message):
        load_retrain_space(entries)


def test_bad_value_in_a_grid_names_the_config_it_lands_in():
    grid = {"train_layers": 1, "hidden_size": 64, "subsample": [0.5, 2.0], "epochs": 1}
    with pytest.raises(EkyaError, match=r"'c01': subsample must be in \(0, 1\], got 2.0"):
        load_retrain_space([grid])


def test_default_space_spans_the_papers_ranges():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).parents[2] / "conf" / "retrain_space" / "default.yaml").read_text())
    space = load_retrain_space(spec["configs"])
    assert len(space) == 29
    assert {c.train_layers for c in space} == {1, 2, "all"}  # from the head alone to every layer
    assert min(c.subsample for c in space) == 0.2 and max(c.subsample for c in space) == 1.0
    assert min(c.epochs for c in space) == 2 and max(c.epochs for c in space) == 30
    assert len({c.hidden_size for c in space}) > 1


def test_a_configurations_profiling_probe_and_the_runs_it_shares():
    config = RetrainConfig("c", 2, 64, 0.5, 30, 16, 0.05)
    assert config.probe(3) == RetrainConfig("c", 2, 64, 1.0, 3, 16, 0.05)
    # Equal but for data share and epochs: one profiling run serves both.
    assert config.profile_key() == RetrainConfig("d", 2, 64, 0.2, 5, 16, 0.05).profile_key()
    assert config.profile_key() != RetrainConfig("c", 1, 64, 0.5, 30, 16, 0.05).profile_key()

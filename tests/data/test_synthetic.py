"""Tests of the built-in drifting dataset and the class-mix plot."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from ekya.data.base import CLASSES, StreamSource, Window
from ekya.data.class_mix import class_fractions, plot_class_mix
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "dataset" / "synthetic.yaml"
SMALL = dict(
    num_streams=2,
    num_windows=4,
    crops_per_window=60,
    frames_per_window=12,
    resolution=16,
    holdout_streams=1,
    holdout_windows=2,
)


def small(**changes: object) -> SyntheticSource:
    return SyntheticSource(**{**SMALL, **changes})


def assert_same_window(first: Window, second: Window) -> None:
    for name in ("images", "labels", "frame_ids", "timestamps"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_arrays() -> None:
    assert_same_window(small(seed=3).window("cam1", 2), small(seed=3).window("cam1", 2))
    assert_same_window(small(seed=3).holdout()[1], small(seed=3).holdout()[1])


def test_different_seed_gives_different_arrays() -> None:
    first, second = small(seed=0).window("cam0", 1), small(seed=1).window("cam0", 1)
    assert not np.array_equal(first.images, second.images)
    assert not np.array_equal(first.labels, second.labels)


def test_windows_use_independent_random_streams() -> None:
    """A window does not depend on access order nor on how many streams/windows exist."""
    source = small()
    late_first = source.window("cam1", 3)
    source.window("cam0", 0)
    assert_same_window(late_first, small().window("cam1", 3))
    assert_same_window(late_first, small(num_streams=5, num_windows=9).window("cam1", 3))
    assert not np.array_equal(source.window("cam0", 3).images, late_first.images)
    assert not np.array_equal(source.window("cam1", 2).images, late_first.images)


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = small(cache_dir=str(tmp_path))
    written = cached.window("cam0", 1)
    assert cached.cache is not None and cached.cache.path(cached.cache_key("cam0", 1)).exists()
    assert_same_window(written, small().window("cam0", 1))

    reader = small(cache_dir=str(tmp_path))
    monkeypatch.setattr(reader, "_generate", lambda stream, index: pytest.fail("window was regenerated"))
    assert_same_window(reader.window("cam0", 1), written)


@pytest.mark.parametrize(
    "change",
    [
        {"num_streams": 3},
        {"num_windows": 5},
        {"window_seconds": 60.0},
        {"crops_per_window": 61},
        {"frames_per_window": 13},
        {"resolution": 24},
        {"holdout_streams": 2},
        {"holdout_windows": 3},
        {"seed": 7},
    ],
)
def test_cache_key_changes_with_every_parameter(change: dict) -> None:
    assert small(**change).cache_key("cam0", 0) != small().cache_key("cam0", 0)


def test_cache_key_depends_on_stream_and_index_not_cache_dir(tmp_path: Path) -> None:
    source = small()
    keys = {source.cache_key(stream, k) for stream in ("cam0", "cam1", "holdout0") for k in range(2)}
    assert len(keys) == 6
    assert small(cache_dir=str(tmp_path)).cache_key("cam0", 0) == source.cache_key("cam0", 0)


def test_corrupt_cache_file_is_regenerated(tmp_path: Path) -> None:
    source = small(cache_dir=str(tmp_path))
    expected = source.window("cam1", 0)
    path = source.cache.path(source.cache_key("cam1", 0))
    path.write_bytes(b"not a zip file")
    assert_same_window(small(cache_dir=str(tmp_path)).window("cam1", 0), expected)
    with np.load(path) as stored:  # the entry was rewritten and is readable again
        np.testing.assert_array_equal(stored["labels"], expected.labels)


def test_cache_entry_missing_arrays_is_regenerated(tmp_path: Path) -> None:
    source = small(cache_dir=str(tmp_path))
    source.cache.save(source.cache_key("cam0", 2), {"labels": np.zeros(3, dtype=np.int64)})
    assert_same_window(source.window("cam0", 2), small().window("cam0", 2))


# --------------------------------------------------------------------------- windows


def test_window_shapes_dtypes_and_labels() -> None:
    source = small()
    assert source.streams == ["cam0", "cam1"]
    assert source.num_windows("cam1") == 4 and source.num_windows("holdout0") == 2
    window = source.window("cam1", 3)
    assert (window.stream, window.index, len(window)) == ("cam1", 3, 60)
    assert window.images.shape == (60, 3, 16, 16) and window.images.dtype == np.uint8
    assert window.labels.dtype == np.int64 and window.labels.min() >= 0 and window.labels.max() < len(CLASSES)
    assert window.frame_ids.dtype == np.int64 and window.timestamps.dtype == np.float64
    assert window.images.std() > 10  # not a blank image


def test_default_resolution_is_32() -> None:
    window = SyntheticSource(num_streams=1, crops_per_window=8, holdout_streams=0).window("cam0", 0)
    assert window.images.shape == (8, 3, 32, 32)


def test_timestamps_inside_window_and_sorted_with_several_crops_per_frame() -> None:
    source = small(window_seconds=30.0)
    for index in range(4):
        window = source.window("cam0", index)
        assert (window.start_seconds, window.end_seconds) == (30.0 * index, 30.0 * (index + 1))
        assert np.all(window.timestamps >= window.start_seconds) and np.all(window.timestamps < window.end_seconds)
        assert np.all(np.diff(window.timestamps) >= 0) and np.all(np.diff(window.frame_ids) >= 0)
        assert np.all((window.frame_ids >= 12 * index) & (window.frame_ids < 12 * (index + 1)))
        assert len(np.unique(window.frame_ids)) < len(window)
        # one timestamp per frame
        _, first = np.unique(window.frame_ids, return_index=True)
        assert len(np.unique(window.timestamps)) == len(first)


def test_holdout_windows() -> None:
    source = small(holdout_streams=2, holdout_windows=3)
    windows = source.holdout()
    assert [(w.stream, w.index) for w in windows] == [(f"holdout{i}", k) for i in range(2) for k in range(3)]
    assert source.holdout_names == ["holdout0", "holdout1"]
    assert not set(source.holdout_names) & set(source.streams)
    assert small(holdout_streams=0).holdout() == []


# --------------------------------------------------------------------------- drift description


def test_class_mix_changes_across_windows_and_cameras() -> None:
    source = SyntheticSource(num_streams=4, num_windows=6, crops_per_window=400, resolution=8, holdout_streams=0)
    mixes = {stream: [source.scene(stream, k)["class_mix"] for k in range(6)] for stream in source.streams}
    for stream, per_window in mixes.items():
        first, last = (np.array(list(mix.values())) for mix in (per_window[0], per_window[-1]))
        assert np.isclose(first.sum(), 1.0) and np.isclose(last.sum(), 1.0)
        assert 0.5 * np.abs(first - last).sum() > 0.15, stream
    starts = [np.array(list(per_window[0].values())) for per_window in mixes.values()]
    assert min(0.5 * np.abs(a - b).sum() for i, a in enumerate(starts) for b in starts[i + 1 :]) > 0.1
    # the sampled crops follow the scene: measured class fractions move with it
    measured = class_fractions(source, "cam0")
    assert 0.5 * np.abs(measured[0] - measured[-1]).sum() > 0.15
    expected = np.array(list(mixes["cam0"][0].values()))
    assert 0.5 * np.abs(measured[0] - expected).sum() < 0.1


def test_scene_describes_lighting_weather_and_appearance_drift() -> None:
    source = SyntheticSource(num_streams=4, num_windows=6, holdout_streams=0)
    for stream in source.streams:
        scenes = [source.scene(stream, k) for k in range(6)]
        assert scenes[0]["lighting"] == "day"
        assert scenes[-1]["lighting"] in ("dusk", "night"), stream  # the day goes by
        assert all(s["weather"] in ("clear", "fog", "rain", "blur") for s in scenes)
        hue_shift = [abs((scenes[-1]["palette_hues_degrees"][c] - scenes[0]["palette_hues_degrees"][c] + 180) % 360 - 180) for c in CLASSES]
        assert np.mean(hue_shift) > 30, stream
        assert set(scenes[0]["class_mix"]) == set(CLASSES)
    assert source.scene("cam0", 0) != source.scene("cam1", 0)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("num_streams", 0),
        ("num_windows", 2.5),
        ("window_seconds", 0.0),
        ("window_seconds", float("nan")),
        ("crops_per_window", -5),
        ("frames_per_window", 0),
        ("resolution", 4),
        ("resolution", 4096),
        ("holdout_streams", -1),
        ("holdout_windows", 0),
        ("seed", -3),
        ("seed", True),
    ],
)
def test_bad_parameters_raise_with_the_value(name: str, value: object) -> None:
    with pytest.raises(EkyaError, match=name) as raised:
        small(**{name: value})
    assert repr(value) in str(raised.value)


def test_unknown_stream_or_index_raises() -> None:
    source = small()
    with pytest.raises(EkyaError, match="cam9"):
        source.window("cam9", 0)
    with pytest.raises(EkyaError, match="4"):
        source.window("cam0", 4)
    with pytest.raises(EkyaError, match="-1"):
        source.scene("cam0", -1)
    with pytest.raises(EkyaError, match="holdout1"):
        source.num_windows("holdout1")


def test_config_file_lists_every_constructor_parameter(tmp_path: Path) -> None:
    from hydra.utils import instantiate

    config = OmegaConf.load(CONFIG)
    assert config.name == "synthetic" and config._target_ == "ekya.data.synthetic.SyntheticSource"
    parameters = inspect.signature(SyntheticSource).parameters
    assert set(config) - {"_target_", "name"} == set(parameters)
    for name, parameter in parameters.items():
        if name != "cache_dir":
            assert config[name] == parameter.default, name
    config.cache_dir = str(tmp_path)
    source = instantiate({key: value for key, value in config.items() if key != "name"})
    assert isinstance(source, SyntheticSource) and source.streams == ["cam0", "cam1", "cam2"]


# --------------------------------------------------------------------------- class-mix plot


def test_plot_class_mix_one_axes_per_stream() -> None:
    source = small(num_streams=3)
    figure = plot_class_mix(source)
    axes = figure.get_axes()
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["cam0", "cam1", "cam2"]
    assert axes[-1].get_xlabel() and axes[0].get_ylabel()
    assert [text.get_text() for text in figure.legends[0].get_texts()] == list(CLASSES)
    # stacked bars: the bar heights of each window sum to 1
    heights = np.array([patch.get_height() for patch in axes[0].patches]).reshape(len(CLASSES), 4)
    np.testing.assert_allclose(heights.sum(axis=0), 1.0)
    assert len(plot_class_mix(source, ["cam2"]).get_axes()) == 1
    with pytest.raises(EkyaError, match="cam7"):
        plot_class_mix(source, ["cam7"])


class _TinySource(StreamSource):
    """A hand-built source: one stream, two windows with known labels."""

    def __init__(self) -> None:
        super().__init__(window_seconds=10.0)
        self._labels = [np.array([0, 0, 1]), np.array([], dtype=np.int64)]

    @property
    def streams(self) -> list[str]:
        return ["only"]

    def num_windows(self, stream: str) -> int:
        return 2

    def window(self, stream: str, index: int) -> Window:
        n = len(self._labels[index])
        return Window(stream, index, 10.0 * index, 10.0 * (index + 1), np.zeros((n, 3, 2, 2), np.uint8),
                      self._labels[index], np.zeros(n, np.int64), np.full(n, 10.0 * index))


def test_plot_class_mix_works_for_any_source(tmp_path: Path) -> None:
    np.testing.assert_allclose(class_fractions(_TinySource(), "only")[0], [2 / 3, 1 / 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(class_fractions(_TinySource(), "only")[1], np.zeros(len(CLASSES)))
    figure = plot_class_mix(_TinySource())
    figure.savefig(tmp_path / "mix.png")
    assert (tmp_path / "mix.png").stat().st_size > 0


# --------------------------------------------------------------------------- drift is real


def _tensors(window: Window, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(window.images[rows]).float() / 255.0
    images = images - images.mean(dim=(1, 2, 3), keepdim=True)
    return images, torch.from_numpy(window.labels[rows])


def _train_mlp(images: torch.Tensor, labels: torch.Tensor, epochs: int = 30) -> torch.nn.Module:
    """A seeded 2-layer MLP on 2x2-pooled pixels (CPU, about a second)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(images[0].numel() // 4, 128), torch.nn.ReLU(), torch.nn.Linear(128, len(CLASSES))
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        permutation = torch.randperm(len(labels), generator=order)
        for start in range(0, len(labels), 50):
            batch = permutation[start : start + 50]
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images[batch]), labels[batch]).backward()
            optimizer.step()
    return model


def _accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(images).argmax(dim=1) == labels).float().mean())


def test_model_from_an_early_window_drifts_and_retraining_on_the_previous_window_recovers() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        source = SyntheticSource(num_streams=1, num_windows=6, crops_per_window=600, holdout_streams=0)
        first, previous, last = (source.window("cam0", k) for k in (0, 4, 5))
        train_rows, test_rows = np.arange(600) % 2 == 0, np.arange(600) % 2 == 1
        early_model = _train_mlp(*_tensors(first, train_rows))
        same_window = _accuracy(early_model, *_tensors(first, test_rows))
        drifted = _accuracy(early_model, *_tensors(last, test_rows))
        retrained = _accuracy(_train_mlp(*_tensors(previous, train_rows)), *_tensors(last, test_rows))
    finally:
        torch.set_num_threads(threads)
    print(f"window 0 model: {same_window:.3f} on window 0, {drifted:.3f} on window 5; window 4 model: {retrained:.3f} on window 5")
    assert same_window >= 0.8  # learnable within one window
    assert same_window - drifted >= 0.10  # real drift
    assert retrained - drifted >= 0.5 * (same_window - drifted)  # retraining wins most of it back

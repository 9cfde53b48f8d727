"""The micro-profiler: estimate each retraining configuration's accuracy and GPU cost cheaply.

Each configuration is trained for ``profile_epochs`` epochs (``head_profile_epochs`` if it
trains only the head, whose frozen backbone runs once) on a sample that is
``sample_fraction`` of the window's labeled data (the same sample for every
configuration), validated ``validations_per_epoch`` times per epoch. The validation
accuracies, placed by training progress (samples seen / sample size), are fitted to a
saturating curve (:mod:`ekya.profiling.curve_fit`) and extrapolated to the configuration's
own data (``subsample`` of the window) and epochs; the run's measured seconds give a
:class:`~ekya.profiling.cost_model.CostModel` scaled to the same data (by optimizer steps,
``cost_scaling``) and epochs. Finally
training more layers, all else equal, is never estimated worse than training fewer
(:func:`monotone_in_layers`): a short run on a small sample barely moves a deep or freshly
initialised configuration, and its curve alone underestimates it.

The profiler's own cost (``ConfigEstimate.profiling_gpu_seconds``) is everything the run
measured: training, the one-off frozen-layer pass, and validation, less the frozen-layer passes
it reused from an earlier run of the same depth (``ProfileRun.reused_seconds``).

The training itself is the caller's ``train_fn(config, sample_fraction, epochs,
validations_per_epoch) -> ProfileRun`` (real PyTorch training lives in ``ekya.training``;
tests pass a fake), so this module is pure numpy/scipy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Callable, Hashable, Protocol, Sequence

import numpy as np

from ekya.errors import EkyaError
from ekya.profiling.cost_model import CostModel
from ekya.profiling.curve_fit import DEFAULT_FAMILY, FAMILIES, AccuracyCurve, extrapolate, fit_accuracy_curve


class ProfiledConfig(Protocol):
    """What the profiler reads from a retraining configuration; anything else is opaque."""

    name: str
    subsample: float  # fraction of the window's labeled data the configuration trains on
    epochs: int


@dataclass(frozen=True)
class ProfileRun:
    """What ``train_fn`` measured while training one configuration on the profiling sample.

    Attributes:
        validation_accuracies: validation accuracies (fractions in [0, 1]), in training order.
        seconds_per_epoch: GPU-seconds at 100% of one GPU for one epoch on the sample,
            excluding the one-off ``feature_seconds``.
        num_samples: number of samples in the training sample.
        num_classes: number of distinct classes among those samples.
        startup_seconds: fixed GPU-seconds of the run (model load, data loader start), if measured.
        feature_seconds: one-off GPU-seconds computing the frozen layers' output for the
            sample (grows with the number of samples, not with epochs).
        validation_seconds: GPU-seconds spent validating (profiling cost only).
        validation_sample_epochs: training progress at each validation point, in epochs over
            the sample (samples seen / num_samples); None: 1, 2, ... (one point per epoch).
        reused_seconds: of ``feature_seconds`` and ``validation_seconds``, the GPU-seconds of
            frozen-layer passes an earlier run of the same frozen depth computed and this run
            reused (:class:`ekya.training.retrain.FrozenPasses`): not spent again.
    """

    validation_accuracies: Sequence[float]
    seconds_per_epoch: float
    num_samples: int
    num_classes: int
    startup_seconds: float = 0.0
    feature_seconds: float = 0.0
    validation_seconds: float = 0.0
    validation_sample_epochs: Sequence[float] | None = None
    reused_seconds: float = 0.0

    def progress(self) -> np.ndarray:
        """Training progress (sample-epochs) of each validation point."""
        if self.validation_sample_epochs is None:
            return np.arange(1, len(self.validation_accuracies) + 1, dtype=np.float64)
        return np.asarray(self.validation_sample_epochs, dtype=np.float64)


@dataclass(frozen=True)
class ConfigEstimate:
    """The profiler's estimate for one retraining configuration in one window.

    Attributes:
        config_name: the configuration's name.
        accuracy: estimated accuracy (fraction in [0, 1]) after retraining on its full data and epochs.
        gpu_seconds: estimated GPU-seconds at 100% of one GPU of that retraining.
        curve: the accuracy curve fitted to the profiled epochs (x in epochs on the sample);
            ``accuracy`` is above its prediction when the layer rule lifted it (``layer_monotone``).
        profiling_gpu_seconds: GPU-seconds spent profiling it (a run shared by several
            configurations is split evenly between them).
    """

    config_name: str
    accuracy: float
    gpu_seconds: float
    curve: AccuracyCurve
    profiling_gpu_seconds: float


#: ``train_fn(config, sample_fraction, epochs, validations_per_epoch)``: train ``config`` for
#: ``epochs`` epochs on ``sample_fraction`` of the window's labeled data, validating
#: ``validations_per_epoch`` times per epoch, and report what was measured.
TrainFunction = Callable[[Any, float, int, int], ProfileRun]


#: How a profiled epoch's cost scales to a configuration's data (``MicroProfiler(cost_scaling=...)``).
COST_SCALINGS = ("steps", "samples")
#: Share of a window's labeled crops the profiler validates on (never trained on while profiling).
VALIDATION_FRACTION = 0.2


def total_profiling_gpu_seconds(estimates: Sequence[ConfigEstimate]) -> float:
    """GPU-seconds (at 100% of one GPU) the profiler spent producing ``estimates``."""
    return float(sum(estimate.profiling_gpu_seconds for estimate in estimates))


def check_sample_labels(labels: np.ndarray, what: str = "profiling sample") -> None:
    """Raise :class:`EkyaError` if ``labels`` is empty.

    A single class is fine: a camera may see only pedestrians in a window. The classifier
    keeps its full class set, and retraining on one class is still retraining.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        raise EkyaError(f"{what} is empty: no labeled samples to train on")


def cover_classes(chosen: np.ndarray, candidates: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                  min_count: int = 1) -> np.ndarray:
    """``chosen`` (indices drawn uniformly from ``candidates``) with a rare class swapped in where it is missing.

    Every class with at least ``min_count`` crops among ``candidates`` but none in ``chosen``
    gets one of them (drawn with ``rng``), in place of a crop of the class ``chosen`` holds
    most of (never its last crop), rarest classes first, while the size allows. When no class
    is missing, ``chosen`` is returned unchanged, so a uniform draw that already covers every
    class stays as it was. Returns sorted indices, as many as ``chosen``.
    """
    chosen = np.sort(np.asarray(chosen))
    present, counts = np.unique(labels[candidates], return_counts=True)
    missing = [c for c, n in sorted(zip(present, counts), key=lambda item: (item[1], item[0]))
               if n >= min_count and not np.any(labels[chosen] == c)]
    if not missing:
        return chosen
    chosen = chosen.copy()
    for label in missing:
        held, held_counts = np.unique(labels[chosen], return_counts=True)
        if held_counts.max() < 2:
            break  # every chosen crop is its class's only one: no room left
        donor = held[np.argmax(held_counts)]
        out = rng.choice(chosen[labels[chosen] == donor])
        pool = candidates[labels[candidates] == label]
        chosen[chosen == out] = rng.choice(pool)
    return np.sort(chosen)


class MicroProfiler:
    """Estimates accuracy and GPU cost of retraining configurations from short runs on a sample.

    After the micro-profiler of Ekya (NSDI'22, section 4.3), with the curve fit of Optimus
    (EuroSys'18) or a better family (see :mod:`ekya.profiling.curve_fit`).

    Args:
        sample_fraction: share of the window's labeled data used for profiling, in (0, 1].
        profile_epochs: epochs each configuration is trained for when profiled, >= 1.
        seed: seed of :meth:`split` (which samples form the validation set and the profiling sample).
        curve_family: accuracy-curve family, a key of ``curve_fit.FAMILIES``.
        validations_per_epoch: validation points per profiled epoch, >= 1 (the curve fit
            needs 3 points: e.g. 1 epoch validated 3 times).
        head_profile_epochs: epochs for configurations that train only the head
            (``train_layers == 1``); None: ``profile_epochs``. Their frozen backbone runs once
            per crop, so an epoch costs little more than the head's matrix product, and a
            longer curve costs almost nothing (see :meth:`epochs_for`).
        layer_monotone: estimates never fall as more layers are trained: among configurations
            equal in everything but ``train_layers`` (and name), each is estimated at least as
            accurate as any that trains fewer layers, plus the gain its own curve still predicts
            (:func:`monotone_in_layers`). A few steps on a small sample barely move a deep or
            freshly initialised configuration, so its curve alone underestimates it; training a
            superset of the parameters from the same start is not expected to do worse.
        cost_scaling: how a profiled epoch's seconds scale to the configuration's data:
            ``"steps"`` (optimizer steps, ``ceil(samples / batch_size)``, for configurations with
            a ``batch_size``) or ``"samples"`` (see :meth:`CostModel.from_measurement`).
        validation_size: crops of a window the profiler validates on, an int >= 1 (the paper's
            regime: a labeled pool of thousands of crops and a validation set of fixed size);
            None: :data:`VALIDATION_FRACTION` of the window.
    """

    def __init__(
        self, sample_fraction: float = 0.1, profile_epochs: int = 5, seed: int = 0, curve_family: str = DEFAULT_FAMILY,
        validations_per_epoch: int = 1, head_profile_epochs: int | None = None, layer_monotone: bool = True,
        cost_scaling: str = "steps", validation_size: int | None = None,
    ) -> None:
        if isinstance(sample_fraction, bool) or not isinstance(sample_fraction, (int, float)) or not (
                np.isfinite(sample_fraction) and 0 < sample_fraction <= 1):
            raise EkyaError(f"profiler.sample_fraction must be a fraction in (0, 1], got {sample_fraction!r}")
        if not _is_count(profile_epochs):
            raise EkyaError(f"profiler.profile_epochs must be an integer >= 1, got {profile_epochs!r}")
        if not _is_count(validations_per_epoch):
            raise EkyaError(f"profiler.validations_per_epoch must be an integer >= 1, got {validations_per_epoch!r}")
        if head_profile_epochs is not None and not _is_count(head_profile_epochs):
            raise EkyaError(f"profiler.head_profile_epochs must be an integer >= 1 or null, got {head_profile_epochs!r}")
        if validation_size is not None and not _is_count(validation_size):
            raise EkyaError(f"profiler.validation_size must be an integer >= 1 (crops) or null, got {validation_size!r}")
        if curve_family not in FAMILIES:
            raise EkyaError(f"unknown accuracy-curve family profiler.curve_family={curve_family!r}; valid: {', '.join(sorted(FAMILIES))}")
        if not isinstance(layer_monotone, bool):
            raise EkyaError(f"profiler.layer_monotone must be true or false, got {layer_monotone!r}")
        if cost_scaling not in COST_SCALINGS:
            raise EkyaError(f"unknown profiler.cost_scaling {cost_scaling!r}; valid: {', '.join(COST_SCALINGS)}")
        self.validation_size = None if validation_size is None else int(validation_size)
        self.layer_monotone = layer_monotone
        self.cost_scaling = cost_scaling
        self.sample_fraction = float(sample_fraction)
        self.profile_epochs = int(profile_epochs)
        self.seed = int(seed)
        self.curve_family = curve_family
        self.validations_per_epoch = int(validations_per_epoch)
        self.head_profile_epochs = self.profile_epochs if head_profile_epochs is None else int(head_profile_epochs)

    def epochs_for(self, config: Any) -> int:
        """Epochs ``config`` is profiled for: ``head_profile_epochs`` if it trains only the head, else ``profile_epochs``."""
        return self.head_profile_epochs if getattr(config, "train_layers", None) == 1 else self.profile_epochs

    def sample_size(self, window_num_samples: int) -> int:
        """Number of samples in the profiling sample of a window of ``window_num_samples`` samples."""
        size = int(round(self.sample_fraction * window_num_samples))
        if size < 1:
            raise EkyaError(
                f"profiling sample is empty: profiler.sample_fraction={self.sample_fraction:g} of {window_num_samples} "
                "labeled samples rounds to 0"
            )
        return size

    def split_sizes(self, window_num_samples: int, window: str = "a window") -> tuple[int, int]:
        """``(validation size, profiling-sample size)`` for a window of ``window_num_samples`` labeled crops.

        Raises:
            EkyaError: the two do not fit in the window (the message names the keys to change).
        """
        size = self.sample_size(window_num_samples)
        if self.validation_size is None:
            validation_size = max(1, int(window_num_samples * VALIDATION_FRACTION))
            if validation_size + size > window_num_samples:
                raise EkyaError(
                    f"{window} has {window_num_samples} labeled crops: too few for a validation set of {validation_size} "
                    f"and a profiling sample of {size} (lower profiler.sample_fraction)"
                )
            return validation_size, size
        if self.validation_size + size > window_num_samples:
            raise EkyaError(
                f"profiler.validation_size={self.validation_size} and a profiling sample of {size} "
                f"(profiler.sample_fraction={self.sample_fraction:g}) do not fit in {window} of {window_num_samples} "
                f"labeled crops; valid: validation_size <= {window_num_samples - size}"
            )
        return self.validation_size, size

    def split(self, labels: np.ndarray, window_index: int, stream_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(validation, sample)``: sorted indices of a window's ``labels`` the profiler validates and trains on.

        The validation set is ``validation_size`` crops (None: :data:`VALIDATION_FRACTION` of
        the window, at least one crop), drawn first, seeded with ``[seed, stream_index, window_index]``; the profiling sample
        is ``sample_fraction`` of the window drawn from the rest, seeded with ``[seed,
        window_index]``. The two never overlap, and the validation set does not depend on the
        profiler's settings (so a study of them can keep one reference).

        Both draws are uniform, then stratified where a class is rare (:func:`cover_classes`):
        a class the uniform draw missed gets one crop in the validation set when it has at
        least two in the window, and one in the sample when any is left, so a rare class is
        both trained on and measured. A window of a single class is split as any other.

        Raises:
            EkyaError: the window is too small for both, or the sample is empty.
        """
        labels = np.asarray(labels)
        validation_size, size = self.split_sizes(len(labels), f"window {window_index}")
        everything = np.arange(len(labels))
        rng = np.random.default_rng([self.seed, stream_index, window_index])
        validation = cover_classes(rng.choice(len(labels), size=validation_size, replace=False), everything, labels, rng,
                                   min_count=2)
        # A class whose every crop went to validation gives one back, so the sample can train on it.
        for label in np.unique(labels):
            of_class = np.flatnonzero(labels == label)
            others = np.setdiff1d(everything, validation)
            if len(others) == 0 or not np.isin(of_class, validation).all():
                continue
            rest_classes, rest_counts = np.unique(labels[others], return_counts=True)
            swap_in = rng.choice(others[labels[others] == rest_classes[np.argmax(rest_counts)]])
            validation = np.sort(np.append(validation[validation != rng.choice(of_class)], swap_in))
        rest = np.setdiff1d(everything, validation)
        sample_rng = np.random.default_rng([self.seed, window_index])
        sample = cover_classes(sample_rng.choice(rest, size=size, replace=False), rest, labels, sample_rng)
        check_sample_labels(labels[sample], f"profiling sample of window {window_index}")
        return validation, sample

    def profile(
        self,
        configs: Sequence[ProfiledConfig],
        train_fn: TrainFunction,
        window_num_samples: int,
        profile_key: Callable[[Any], Hashable] | None = None,
    ) -> list[ConfigEstimate]:
        """Estimate every configuration's accuracy and GPU-seconds in a window.

        Args:
            configs: retraining configurations (attributes ``name``, ``subsample``, ``epochs``).
            train_fn: ``train_fn(config, sample_fraction, epochs, validations_per_epoch) -> ProfileRun``.
            window_num_samples: labeled samples available for retraining in the window.
            profile_key: configurations with equal keys share one profiling run (e.g. key
                on everything but subsample and epochs, which profiling does not use);
                default: one run per configuration.

        Returns:
            One estimate per configuration, in the order given.

        Raises:
            EkyaError: duplicate names, a bad subsample or epochs, an empty profiling
                sample (the caller decides what to do).
        """
        if window_num_samples < 1:
            raise EkyaError(f"window has {window_num_samples} labeled samples; the profiling sample would be empty")
        self.sample_size(window_num_samples)
        names = [config.name for config in configs]
        if len(set(names)) != len(names):
            raise EkyaError(f"retraining configuration names must be distinct, got {names}")
        key_of = profile_key if profile_key is not None else (lambda config: config.name)
        keys = [key_of(config) for config in configs]
        sharing = Counter(keys)
        runs: dict[Hashable, tuple[ProfileRun, AccuracyCurve]] = {}
        estimates = []
        for config, key in zip(configs, keys):
            _check_config(config)
            if key not in runs:
                run = train_fn(config, self.sample_fraction, self.epochs_for(config), self.validations_per_epoch)
                _check_run(run, config.name)
                accuracies = np.asarray(run.validation_accuracies, dtype=np.float64)
                try:
                    curve = fit_accuracy_curve(run.progress(), accuracies, self.curve_family)
                except EkyaError as error:
                    raise EkyaError(f"profiling run of config {config.name!r}: {error}") from None
                runs[key] = (run, curve)
            run, curve = runs[key]
            sample_fraction = run.num_samples / window_num_samples
            full_samples = max(1, int(round(config.subsample * window_num_samples)))
            batch_size = getattr(config, "batch_size", None) if self.cost_scaling == "steps" else None
            cost_model = CostModel.from_measurement(run.seconds_per_epoch, run.num_samples, run.startup_seconds, run.feature_seconds,
                                                    batch_size)
            profiling_seconds = (run.seconds_per_epoch * self.epochs_for(config) + run.feature_seconds + run.validation_seconds
                                 + run.startup_seconds - run.reused_seconds)
            estimates.append(
                ConfigEstimate(
                    config_name=config.name,
                    accuracy=float(extrapolate(curve, config.epochs, sample_fraction, config.subsample)),
                    gpu_seconds=cost_model.gpu_seconds(full_samples, config.epochs),
                    curve=curve,
                    profiling_gpu_seconds=profiling_seconds / sharing[key],
                )
            )
        if self.layer_monotone:
            headroom = [estimate.accuracy - float(estimate.curve.predict(runs[key][0].progress()[-1]))
                        for estimate, key in zip(estimates, keys)]
            lifted = monotone_in_layers(configs, [estimate.accuracy for estimate in estimates], headroom)
            estimates = [replace(estimate, accuracy=accuracy) for estimate, accuracy in zip(estimates, lifted)]
        return estimates


def _is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number >= 1 (not a bool)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.integer)) and np.isfinite(value)
            and int(value) == value and value >= 1)


def _layer_rank(train_layers: Any) -> float:
    """Order of ``train_layers`` values: 1 < 2 < ... < "all"."""
    return float("inf") if train_layers == "all" else float(train_layers)


def monotone_in_layers(
    configs: Sequence[Any], accuracies: Sequence[float], headroom: Sequence[float] | None = None
) -> list[float]:
    """``accuracies`` (fractions) lifted so that training more layers is never estimated worse.

    Configurations are grouped by every dataclass field but ``name`` and ``train_layers``
    (head size, data share, epochs, batch size, learning rate). Within a group, a configuration
    is estimated at least as accurate as the best one that trains fewer layers, plus its own
    ``headroom``: the gain its own curve still predicts beyond the last profiled point (clipped
    at 0). A deep configuration whose short run has not taken off yet thus starts from what the
    shallower one reaches, and keeps the improvement its own curve shows it has left; results
    are clipped to 1. Configurations without a ``train_layers`` field, or that are not
    dataclasses, are left as they are.
    """
    original = [float(accuracy) for accuracy in accuracies]
    extra = [max(0.0, float(gain)) for gain in headroom] if headroom is not None else [0.0] * len(original)
    lifted = list(original)
    groups: dict[tuple, list[int]] = {}
    for index, config in enumerate(configs):
        if not is_dataclass(config) or not hasattr(config, "train_layers"):
            continue
        key = tuple((field.name, getattr(config, field.name)) for field in fields(config)
                    if field.name not in ("name", "train_layers"))
        groups.setdefault(key, []).append(index)
    for members in groups.values():
        for index in members:
            rank = _layer_rank(configs[index].train_layers)
            shallower = [original[other] for other in members if _layer_rank(configs[other].train_layers) < rank]
            if shallower:
                lifted[index] = min(1.0, max(original[index], max(shallower) + extra[index]))
    return lifted


def _check_config(config: ProfiledConfig) -> None:
    if not (np.isfinite(config.subsample) and config.subsample > 0):
        raise EkyaError(f"retraining config {config.name!r}: subsample must be a fraction > 0, got {config.subsample!r}")
    if int(config.epochs) != config.epochs or config.epochs < 0:
        raise EkyaError(f"retraining config {config.name!r}: epochs must be an integer >= 0, got {config.epochs!r}")


def _check_run(run: ProfileRun, config_name: str) -> None:
    if run.num_samples < 1:
        raise EkyaError(f"profiling sample of config {config_name!r} is empty: no labeled samples to train on")
    if run.num_classes < 1:
        raise EkyaError(f"profiling sample of config {config_name!r} has no class: no labeled samples to train on")
    if len(run.validation_accuracies) == 0:
        raise EkyaError(f"profiling run of config {config_name!r} reported no validation accuracies")
    if run.validation_sample_epochs is not None and len(run.validation_sample_epochs) != len(run.validation_accuracies):
        raise EkyaError(
            f"profiling run of config {config_name!r}: {len(run.validation_sample_epochs)} validation positions "
            f"for {len(run.validation_accuracies)} validation accuracies"
        )
    for name in ("seconds_per_epoch", "startup_seconds", "feature_seconds", "validation_seconds", "reused_seconds"):
        value = getattr(run, name)
        if not (np.isfinite(value) and value >= 0):
            raise EkyaError(f"profiling run of config {config_name!r}: {name} must be >= 0, got {value!r}")
    if run.reused_seconds > run.feature_seconds + run.validation_seconds + 1e-9:
        raise EkyaError(f"profiling run of config {config_name!r}: reused_seconds {run.reused_seconds!r} exceed its frozen "
                        f"passes and validation ({run.feature_seconds + run.validation_seconds!r} s)")

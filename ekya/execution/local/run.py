"""The local executor: real continuous learning on this device (CPU or one GPU).

Per window k (k >= 1; window 0 is the first labeled data) and stream:

1. labeling (:mod:`.labeling`): window k-1's crops get labels;
2. estimation (:mod:`.estimation`): every retraining configuration is estimated on a sample of
   window k-1 by the micro-profiler (or exactly, in oracle mode); its GPU time is charged at the
   window start;
3. scheduling: any scheduler, on the estimates;
4. retraining and inference for real (:mod:`.retraining`): a chosen configuration is trained on
   window k-1, its cost taken from :mod:`.costs`, and models are evaluated on window k's crops;
   the window timeline places the costs and accuracies (re-plans included);
5. commit: retrained models serve from the moment they finish and carry over to the next window.

Building a run checks it and imports no torch: the modules that train and evaluate models are
imported by the methods that run them (so is every torch user of :mod:`ekya.execution.local`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from ekya.data.base import StreamSource, select
from ekya.data.cache import cache_key, windows_digest, write_text_atomically
from ekya.errors import EkyaError
from ekya.execution.local.concurrent import ConcurrentJobs, train_result
from ekya.profiling.costs import JobCosts, reference_inference
from ekya.execution.local.estimation import Estimation
from ekya.execution.local.labeling import WindowLabeling
from ekya.execution.local.retraining import LocalOutcomes, Retraining, RetrainingResult
from ekya.execution.model_cache import CacheSettings, ModelCache, class_mix
from ekya.execution.placement import PerGpuPlacement
from ekya.execution.timeline import StreamProfile, WindowOutcome
from ekya.inference.config import InferenceConfig
from ekya.scheduling.base import Scheduler
from ekya.scheduling.problem import Decision, Problem, StreamProblem, WindowSettings
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES, resolve_retrain_config
from ekya.training.config import ModelSettings, RetrainConfig

if TYPE_CHECKING:
    from ekya.models.factory import EdgeModel


class LocalRun:
    """Real retraining and inference for every stream and window of a dataset.

    Args:
        source: the dataset.
        model: edge model settings.
        retrain_configs: the retraining space Γ.
        inference_configs: the inference space; the first one with sampling rate 1 and no
            resolution reduction is the reference ("full") configuration.
        settings: G, Δ, aMIN; ``window_seconds`` must equal the source's.
        estimation: how the scheduler's estimates are made (micro-profiler or oracle, pruning, noise).
        costs: how jobs' GPU-seconds are obtained (reference table, calibrated or measured); inference demand
            follows each stream's load (:meth:`ekya.data.base.StreamSource.load` of its window 0).
        labeling: who labels the windows and what accuracy is measured against.
        stream_names: the streams to run (the estimation's too).
        windows: run the first N windows that have a previous window to learn from (None: all).
        seed: seeds training (per stream, window and configuration).
        cache_dir: base-model checkpoints, the hold-out profile and the cost calibration.
        device: torch device.
        progress: progress bars for base-model training and calibration.
        placement: places each decision on physical GPUs (``executor.placement=per_gpu``); None: pooled shares.
        jobs: plays each window in real time with job processes (``executor.jobs=concurrent``); None: jobs run
            ahead and the timeline places their costs.
        cache: the model cache (:mod:`ekya.execution.model_cache`): retrained models are kept (in memory, and in each
            window checkpoint) and the nearest few are estimated on the window's validation set (its cost charged at
            the window start, as ``cache`` overhead, with the micro-profiler) and offered to the scheduler; None: no cache.
    """

    def __init__(
        self,
        source: StreamSource,
        model: ModelSettings,
        retrain_configs: list[RetrainConfig],
        inference_configs: list[InferenceConfig],
        settings: WindowSettings,
        estimation: Estimation,
        costs: JobCosts,
        labeling: WindowLabeling,
        stream_names: list[str],
        windows: int | None,
        seed: int,
        cache_dir: str,
        device: str,
        progress: bool = True,
        placement: PerGpuPlacement | None = None,
        jobs: ConcurrentJobs | None = None,
        cache: CacheSettings | None = None,
    ) -> None:
        if not retrain_configs:
            raise EkyaError("the retraining space is empty: give at least one retraining configuration")
        if not inference_configs:
            raise EkyaError("the inference space is empty: give at least one inference configuration")
        if abs(settings.window_seconds - source.window_seconds) > 1e-9:
            raise EkyaError(f"window_seconds {settings.window_seconds} differs from the dataset's {source.window_seconds}")
        if cache is not None and cache.enabled and jobs is not None:
            raise EkyaError("cache.size > 0 needs executor.jobs=ahead: the concurrent job processes serve the window's "
                            "first model only; use cache.size=0 with executor.jobs=concurrent")
        self.source = source
        self.model = model
        self.retrain_configs = {config.name: config for config in retrain_configs}
        self.inference_configs = {config.name: config for config in inference_configs}
        self.settings = settings
        self.estimation = estimation
        self.costs = costs
        self.labeling = labeling
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.device = device
        self.progress = progress
        self.placement = placement
        self.jobs = jobs
        self._window_inputs: dict[tuple[int, str], tuple[EdgeModel, object, object]] = {}
        self.stream_names = stream_names
        available = min(source.num_windows(stream) for stream in self.stream_names)
        if available < 2:
            raise EkyaError(f"the dataset has {available} window(s) per stream; continuous learning needs at least 2")
        self.window_indices = [int(k) for k in select(list(range(1, available)), windows, "windows")]
        self.reference_inference = reference_inference(self.inference_configs, source.crop_resolution)
        self.serving: dict[str, EdgeModel] = {}
        self.inference_tables: dict[str, dict[str, tuple[float, float]]] = {}  # stream -> its inference table (its load)
        self._retraining: dict[tuple[int, str], Retraining] = {}
        self._outcomes: dict[tuple[int, str], LocalOutcomes] = {}
        #: Retrained models kept for later windows (handles: the models), and the cached model each stream serves (None: another).
        self.cache: ModelCache[EdgeModel] | None = ModelCache(cache, stream_names) if cache is not None and cache.enabled else None
        self.serving_cached: dict[str, str | None] = {stream: None for stream in stream_names}
        self._class_mix: dict[tuple[int, str], list[float]] = {}  # (window, stream) -> class mix of its training data

    # -- once per run -------------------------------------------------------------------
    def prepare(self) -> None:
        """Train (or load) the base model and calibrate job costs on the hold-out cameras (once)."""
        if self.serving:
            return
        from ekya.training.base_model import base_model

        holdout = self.source.holdout()
        if not holdout:
            raise EkyaError("the dataset has no hold-out windows to train the base model on")
        base = base_model(
            holdout,
            self.model.name,
            self.model.hidden_size,
            self.model.base_epochs,
            self.seed,
            self.cache_dir,
            batch_size=self.model.base_batch_size,
            learning_rate=self.model.base_learning_rate,
            device=self.device,
            progress=self.progress,
        )
        self.costs.prepare(base, holdout, self.retrain_configs, self.inference_configs, self.inference_configs[self.reference_inference],
                           {"data": windows_digest(holdout), "model": vars(self.model)}, self.seed, self.cache_dir)
        self.inference_tables = self._stream_inference_tables()
        self.serving = {stream: base for stream in self.stream_names}

    # -- per window and stream ------------------------------------------------------------
    def _seed(self, window: int, stream: str, config: str) -> int:
        names = list(self.retrain_configs)
        index = names.index(config) if config in names else len(names)
        return int(np.random.SeedSequence([self.seed, self.stream_names.index(stream), window, index]).generate_state(1)[0])

    def profile(self, window: int, stream: str) -> StreamProfile:
        """Label window k-1, estimate every configuration on it, and set up window k's jobs."""
        if not self.serving:
            raise RuntimeError("call prepare() before profile()")
        from ekya.models.predict import evaluate
        from ekya.training.retrain import retrain

        labeled = self.labeling.label(self.source.window(stream, window - 1), self.source.window(stream, window))
        serving = self.serving[stream]
        validation_indices, sample_indices = self.estimation.profiler.split(labeled.training.labels, window, self.stream_names.index(stream))
        validation, sample = labeled.training.subset(validation_indices), labeled.training.subset(sample_indices)

        def train(config: RetrainConfig) -> RetrainingResult:
            result = retrain(serving, labeled.training, config, seed=self._seed(window, stream, config.name), device=self.device)
            return RetrainingResult(result, self.costs.training_seconds(config, result), evaluate(result.model, labeled.evaluation, device=self.device))

        retraining = Retraining(train, self.retrain_configs)
        self._retraining[(window, stream)] = retraining
        if self.jobs is not None:
            self._window_inputs[(window, stream)] = (serving, labeled.training, labeled.evaluation)
        oracle = self.estimation.mode == "oracle"
        candidates = []
        if self.cache is not None:
            mix = class_mix(labeled.training.class_counts())
            self._class_mix[(window, stream)] = mix
            candidates = self.cache.candidates(stream, mix, exclude=self.serving_cached[stream])
        cached_models = {entry.name: self.cache.handles[entry.name] for entry in candidates} if candidates else {}
        outcomes = LocalOutcomes(serving, labeled.evaluation, retraining, self.inference_configs, self.reference_inference,
                                 self.inference_tables[stream], self.device, cached_models)

        def full_outcome(name: str) -> tuple[float, float]:
            result = retraining.run(name)
            return result.gpu_seconds, result.accuracy

        def holdout_outcome(name: str) -> tuple[float, float]:
            """Fully retrained on window k-1 but the validation set, measured on it (a perfect micro-profiler)."""
            config = self.retrain_configs[name]
            pool = labeled.training.subset(np.setdiff1d(np.arange(len(labeled.training)), validation_indices))
            result = retrain(serving, pool, config, seed=self._seed(window, stream, name), device=self.device)
            return self.costs.training_seconds(config, result), evaluate(result.model, validation, device=self.device)

        estimates = self.estimation.estimate(
            stream, window, self.window_indices.index(window) if window in self.window_indices else 0,
            serving, labeled.training, validation, sample, full_outcome, holdout_outcome, self.costs,
            lambda name: self._seed(window, stream, name),
            # The oracle sees the serving model's true accuracy on the window; estimates take it on window k-1's validation set.
            outcomes.serving_accuracy if oracle else evaluate(serving, validation, device=self.device),
        )
        self._outcomes[(window, stream)] = outcomes
        table = self.inference_tables[stream]
        names = tuple(sorted(table))
        believed = StreamProblem(
            name=stream,
            serving_accuracy=estimates.serving_accuracy,
            retrain_names=estimates.names,
            retrain_gpu_seconds=estimates.gpu_seconds,
            retrain_accuracy=estimates.accuracy,
            inference_names=names,
            inference_demand=np.array([table[n][0] for n in names]),
            # The oracle sees the window's true outcomes, inference's too; estimates take the hold-out's factors.
            inference_factor=np.array([outcomes.inference(n)[1] if oracle else table[n][1] for n in names]),
            # Cached models are estimated on the validation set, as the serving model is (the oracle: on the window itself).
            cached_names=tuple(cached_models),
            cached_accuracy=np.array([outcomes.cached(name) if oracle else evaluate(model, validation, device=self.device)
                                      for name, model in cached_models.items()]),
        )
        overheads = {"labeling": labeled.gpu_seconds, "profile": estimates.profile_gpu_seconds}
        if self.cache is not None:  # charged like the micro-profiler's runs (the oracle modes are charged nothing)
            crops = len(validation) * len(cached_models) if self.estimation.mode == "micro" else 0
            overheads["cache"] = self.costs.evaluation_seconds(self.reference_inference, crops)
        return StreamProfile(believed, outcomes, overheads)

    def retrain(self, window: int, stream: str, config: str) -> None:
        """Run a chosen retraining now (lets streams train in parallel before the timeline is played); with
        ``executor.jobs=concurrent`` nothing: the job runs in the window itself (:meth:`play_window`)."""
        if self.jobs is None:
            self._retraining[(window, stream)].run(config)

    @property
    def real_time(self) -> bool:
        """Whether windows are played by job processes in real time (:meth:`play_window`) rather than by the timeline."""
        return self.jobs is not None

    def play_window(self, window: int, problem: Problem, scheduler: Scheduler, profiles: list[StreamProfile],
                    first: tuple[Decision, float], placement: PerGpuPlacement | None) -> WindowOutcome:
        """Play ``window`` with every job as a process, side by side at its placed share (``executor.jobs=concurrent``)."""
        inputs = [self._window_inputs.pop((window, stream)) for stream in self.stream_names]
        seeds = [{name: self._seed(window, stream, name) for name in self.retrain_configs} for stream in self.stream_names]
        resolution = {name: config.resolution for name, config in self.inference_configs.items()}
        outcome, retrained = self.jobs.play(window, problem, scheduler, profiles, first, placement, inputs, self.retrain_configs,
                                            resolution, seeds)
        from ekya.training.retrain import subsample_size

        for s, (config, model, accuracy, status) in retrained.items():
            chosen = self.retrain_configs[config]
            samples = subsample_size(len(inputs[s][1].labels), chosen.subsample)
            result = RetrainingResult(train_result(chosen, model, status, samples), float(status.get("seconds", 0.0)), accuracy)
            self._retraining[(window, self.stream_names[s])].record(config, result)
        return outcome

    def commit(self, window: int, retrained: list[str | None], adopted: list[str | None] | None = None) -> None:
        """Models retrained in ``window`` (else the cached models switched to at its start) serve from now on, and
        retrained ones enter the cache; what the serving and retrained models really reached is told to the estimation
        (its record, its correction); the window's training results are released."""
        for stream, config, name in zip(self.stream_names, retrained, adopted or [None] * len(retrained)):
            retraining = self._retraining.pop((window, stream), None)
            result = retraining.result(config) if config is not None and retraining is not None else None
            mix = self._class_mix.pop((window, stream), None)
            if result is not None:
                self.serving[stream] = result.train.model
                self.serving_cached[stream] = None
                if self.cache is not None:
                    self.serving_cached[stream] = self.cache.add(stream, window, config, result.train.model, mix).name
            elif name is not None and self.cache is not None:
                self.serving[stream] = self.cache.use(name)
                self.serving_cached[stream] = name
            outcomes = self._outcomes.pop((window, stream), None)
            if outcomes is not None:
                self.estimation.observe(window, stream, outcomes.serving_accuracy, config if result is not None else None,
                                        result.accuracy if result is not None else None)
            if retraining is not None:
                retraining.release()
        for key in [key for key in self._retraining if key[0] == window]:
            self._retraining.pop(key).release()

    def window_record(self, window: int) -> dict[str, dict]:
        """The window's estimation record per stream (estimates, truths where known, what was reached), for its log."""
        return self.estimation.window_record(window)

    # -- resuming ---------------------------------------------------------------------------
    def _stream_inference_tables(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Each stream's inference table: its load (camera rate, objects per frame) is read from its window 0,
        labeled before window 1 starts."""
        return {stream: self.costs.inference_table(self.source.load([self.source.window(stream, 0)]), self.inference_configs)
                for stream in self.stream_names}

    def save_state(self, folder: Path) -> None:
        """What carries over to the next window: each stream's serving model and the cached ones (one checkpoint per
        distinct model), the estimation's state (kept configurations, correction), the cache's entries and the job
        costs (every random draw is seeded per window)."""
        from ekya.models.checkpoints import save_checkpoint

        folder = Path(folder)
        files: dict[int, str] = {}

        def file_of(model: EdgeModel) -> str:
            if id(model) not in files:
                files[id(model)] = f"model-{len(files)}.pt"
                save_checkpoint(model, folder / files[id(model)])
            return files[id(model)]

        serving = {stream: file_of(self.serving[stream]) for stream in self.stream_names}
        state = {"serving": serving, "estimation": self.estimation.state(), "costs": self.costs.state()}
        if self.cache is not None:
            state["cache"] = {**self.cache.state(), "files": {name: file_of(model) for name, model in self.cache.handles.items()},
                              "serving_cached": self.serving_cached}
        write_text_atomically(folder / "state.json", json.dumps(state))

    def load_state(self, folder: Path) -> None:
        """Serve, prune and cost as :meth:`save_state` wrote (prepares the run first)."""
        from ekya.models.checkpoints import load_checkpoint

        self.prepare()
        path = Path(folder) / "state.json"
        state = json.loads(path.read_text())
        if sorted(state["serving"]) != sorted(self.stream_names):
            raise EkyaError(f"checkpoint {path}: streams {', '.join(sorted(state['serving']))}, but this run has {', '.join(self.stream_names)}")
        expected = {"name": self.model.name}
        models = {name: load_checkpoint(Path(folder) / name, expected, self.device) for name in sorted(set(state["serving"].values()))}
        self.serving = {stream: models[state["serving"][stream]] for stream in self.stream_names}
        if self.cache is not None and "cache" in state:
            handles: dict[str, EdgeModel | None] = {}
            for name, file in state["cache"]["files"].items():
                if file not in models:
                    try:
                        models[file] = load_checkpoint(Path(folder) / file, expected, self.device)
                    except EkyaError:  # a cached model that does not load is skipped (and counted), never fatal
                        models[file] = None
                handles[name] = models[file]
            self.cache.restore(state["cache"], handles)
            self.serving_cached = {stream: state["cache"]["serving_cached"].get(stream) for stream in self.stream_names}
        self.estimation.restore(state["estimation"])
        self.costs.restore(state["costs"])
        self.inference_tables = self._stream_inference_tables()

    # -- Uniform's aliases ----------------------------------------------------------------
    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` picked from a hold-out profile.

        The hold-out profile (every configuration trained from the base model on the first
        hold-out window and evaluated on the last) is computed once and cached as JSON; it needs
        the base model, so resolving an alias prepares the run.
        """
        if name not in RETRAIN_CONFIG_ALIASES:
            if name not in self.retrain_configs:
                raise EkyaError(f"unknown retraining configuration {name!r}; valid: {', '.join(RETRAIN_CONFIG_ALIASES + tuple(self.retrain_configs))}")
            return name
        profile = self._holdout_profile()
        names = list(profile["configs"])
        return resolve_retrain_config(
            name, names, [profile["configs"][n][0] for n in names], [profile["configs"][n][1] for n in names], profile["base_accuracy"]
        )

    def _holdout_profile(self) -> dict:
        holdout = self.source.holdout()
        if len(holdout) < 2:
            raise EkyaError("picking Uniform's high/low configurations needs at least 2 hold-out windows; name a configuration instead")
        key = cache_key({
            "data": windows_digest(holdout), "model": vars(self.model), "seed": self.seed,
            "configs": {name: vars(config) for name, config in self.retrain_configs.items()},
        })
        path = Path(self.cache_dir) / f"holdout-profile-{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        self.prepare()
        from ekya.models.predict import evaluate
        from ekya.training.retrain import retrain

        base = self.serving[self.stream_names[0]]
        train, evaluation = holdout[0], holdout[-1]
        configs = {}
        for name, config in tqdm(self.retrain_configs.items(), desc="hold-out profile for Uniform", disable=not self.progress):
            result = retrain(base, train, config, seed=self.seed, device=self.device)
            configs[name] = (self.costs.training_seconds(config, result), evaluate(result.model, evaluation, device=self.device))
        profile = {"base_accuracy": evaluate(base, evaluation, device=self.device), "configs": configs}
        write_text_atomically(path, json.dumps(profile))
        return profile

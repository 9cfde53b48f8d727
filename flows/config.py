"""The one place where a Hydra config (resolved to plain containers) becomes typed ``ekya`` objects.

Every default lives in ``conf/``: a key missing here is a config error, and a key the builder
does not know is refused with the valid ones. Bad values become one-line
:class:`~ekya.errors.EkyaError` messages; nothing here trains, writes or touches MLflow except
:func:`build_scheduler` resolving Uniform's ``high``/``low`` on a local run (it needs the base model)
and :func:`build_resume` reading the MLflow store (never writing it).

Checking a window-loop config (:func:`check_run`, which every run and sweep point passes first)
imports no torch, Prefect or MLflow (``tests/flows/test_fast_answers.py``), so bad input is answered
before any of them loads. Only what needs them imports them: the CUDA checks of ``executor.device=cuda``,
loading a golden checkpoint, and the other flows' builders (:func:`build_offline_profiler`,
:func:`build_profiler_evaluation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Union

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import InstantiationException

from ekya.data.base import CLASSES, StreamSource, require_holdout, select
from ekya.errors import EkyaError
from ekya.execution.gpu.devices import box_gpus
from ekya.execution.local.concurrent import ConcurrentJobs, job_mode
from ekya.profiling.costs import JobCosts
from ekya.execution.local.estimation import Estimation, PruningSettings
from ekya.execution.local.labeling import WindowLabeling
from ekya.execution.local.run import LocalRun
from ekya.execution.checkpoints import WindowCheckpoints
from ekya.execution.model_cache import CacheSettings
from ekya.execution.placement import placement_rule
from ekya.execution.simulated import SimulatedRun
from ekya.inference.config import load_inference_space
from ekya.inference.labelers import LABELER_NAMES, GoldenCropClassifier, build_labeler
from ekya.models.names import GOLDEN_MODEL_NAMES, MODEL_NAMES
from ekya.profiling.correction import CORRECTIONS, AccuracyCorrection
from ekya.profiling.micro_profiler import MicroProfiler
from ekya.profiling.throughput import scaling_table
from ekya.profiling.trace import Trace, load_trace
from ekya.scheduling import Scheduler, build_scheduler as scheduler_named
from ekya.scheduling.drift import RetrainOnDrift
from ekya.scheduling.problem import ThroughputScaling, WindowSettings
from ekya.scheduling.uniform import RETRAIN_CONFIG_ALIASES
from ekya.tracking.resume import Resumption, find_resumption
from ekya.training.config import ModelSettings, load_retrain_space
from flows.console import check_log_level

if TYPE_CHECKING:
    from ekya.profiling.offline import OfflineProfiler
    from ekya_studies.profiler_fidelity import ProfilerEvaluation

Executor = Union[SimulatedRun, LocalRun]
EXECUTORS = ("local", "simulated")
#: G, Δ and aMIN when neither the config nor the trace gives them.
FALLBACK_GPUS, FALLBACK_DELTA, FALLBACK_MIN_ACCURACY = 1.0, 0.1, 0.0
#: Every executor's keys for how its steps run (flows/runners.py).
RUNNER_KEYS = ("task_runner", "ray_address")
#: Config keys (and groups) only the local executor reads; ``executor=simulated`` refuses overrides of them.
LOCAL_ONLY = ("model", "retrain_space", "inference_space", "labeler", "profiler")
#: Keys of those groups the simulated executor reads all the same.
SIMULATED_READS = ("profiler.noise_std",)


def strict(section: str, mapping: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """``mapping`` as a dict, or an error naming the keys of ``section`` that are not ``known``."""
    known = tuple(known)
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise EkyaError(f"{section}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    return dict(mapping)


def build_source(dataset: Mapping[str, Any]) -> StreamSource:
    """The dataset a ``conf/dataset/*.yaml`` describes (its ``_target_``). ``name`` goes to the sources that take one (the
    file-backed ones, so ``dataset=urban_traffic`` names itself in messages and cache keys), not to ``synthetic``."""
    arguments = {key: value for key, value in dataset.items() if key != "name" or _takes_name(dataset)}
    detection = arguments.get("detection") or {}
    if arguments.get("detector") == "mog2" and detection.get("classifier") is not None:
        # MOG2's boxes have no labels: a golden model labels their crops (ekya.data cannot load one).
        arguments["crop_classifier"] = GoldenCropClassifier(detection["classifier"], device=str(detection.get("classifier_device", "cpu")))
    try:
        return hydra.utils.instantiate(arguments)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, EkyaError):
            raise cause from None
        raise EkyaError(f"dataset {dataset.get('name')!r}: {cause or error}") from None


def _takes_name(dataset: Mapping[str, Any]) -> bool:
    """Whether the dataset's ``_target_`` class has a ``name`` constructor argument."""
    import inspect

    try:
        target = hydra.utils.get_class(str(dataset.get("_target_")))
    except Exception:  # a bad target is instantiate's to report
        return False
    return "name" in inspect.signature(target).parameters


def build_learning_source(dataset: Mapping[str, Any], streams: int | None) -> StreamSource:
    """The dataset of a run that trains a base model: narrowed to its first ``streams`` streams, with hold-out
    windows (else one line naming the keys to set, before anything starts)."""
    source = build_source(dataset)
    source.limit_streams(streams)
    require_holdout(source)
    return source


def build_model_settings(model: Mapping[str, Any]) -> ModelSettings:
    """The edge-model settings of a ``conf/model/*.yaml``."""
    model = strict("model", model, ("name", "num_classes", "hidden_size", "base_epochs", "base_batch_size", "base_learning_rate"))
    if model["name"] not in MODEL_NAMES:
        raise EkyaError(f"unknown model {model['name']!r}; valid: {', '.join(MODEL_NAMES)}")
    if model["num_classes"] != len(CLASSES):
        raise EkyaError(f"model.num_classes must be {len(CLASSES)} (the classes {', '.join(CLASSES)}), got {model['num_classes']!r}")
    return ModelSettings(str(model["name"]), int(model["hidden_size"]), int(model["base_epochs"]), int(model["base_batch_size"]),
                         float(model["base_learning_rate"]))


MICRO_PROFILER_KEYS = ("sample_fraction", "profile_epochs", "head_profile_epochs", "layer_monotone", "validations_per_epoch",
                       "curve_family", "cost_scaling", "validation_size")
PRUNING_KEYS = ("prune_every", "prune_fraction", "prune_floor")
#: Keys of ``conf/profiler/micro.yaml`` for the study of its decisions: the audit and the online correction.
DECISION_KEYS = ("audit", "correction", "correction_prior")


def build_micro_profiler(profiler: Mapping[str, Any], seed: int) -> MicroProfiler:
    """The micro-profiler of ``conf/profiler/micro.yaml`` (the oracles have no profiler keys: the defaults split their validation set)."""
    options = {key: profiler[key] for key in MICRO_PROFILER_KEYS if key in profiler}
    return MicroProfiler(seed=int(seed), **options)


def check_profiler_fits(profiler: MicroProfiler, source: StreamSource) -> None:
    """Refuse a validation set and profiling sample that cannot fit in the dataset's windows, where the dataset
    fixes their size (else each window checks it when it is split)."""
    if source.crops_per_window is not None:
        profiler.split_sizes(source.crops_per_window, f"a window (dataset.crops_per_window={source.crops_per_window})")


def build_estimation(profiler: Mapping[str, Any], retrain_configs: dict, stream_names: list[str], seed: int, device: str) -> Estimation:
    """How a local run estimates retraining configurations: ``conf/profiler/{micro,oracle,holdout_oracle}.yaml``."""
    name = profiler.get("name")
    audit, correction = False, None
    if name == "micro":
        profiler = strict("profiler", profiler, ("name", "noise_std", *MICRO_PROFILER_KEYS, *PRUNING_KEYS, *DECISION_KEYS))
        pruning = (PruningSettings(int(profiler["prune_every"]), float(profiler["prune_fraction"]), int(profiler["prune_floor"]))
                   if float(profiler["prune_fraction"]) > 0 else None)
        audit = profiler.get("audit", False)
        choice = profiler.get("correction", "none")
        if choice not in CORRECTIONS:
            raise EkyaError(f"profiler.correction={choice!r}; valid: {', '.join(CORRECTIONS)}")
        prior = profiler.get("correction_prior", 1.0)
        correction = AccuracyCorrection(prior) if choice == "online" else None
        if choice == "none":
            AccuracyCorrection(prior)  # checks the prior all the same
    else:
        profiler = strict("profiler", profiler, ("name", "noise_std"))
        pruning = None
    return Estimation(str(name), build_micro_profiler(profiler, seed), retrain_configs, stream_names, pruning,
                      float(profiler["noise_std"]), seed, device, audit, correction)


def build_labeling(labeler: Mapping[str, Any], source: StreamSource) -> WindowLabeling:
    """The labeler of a ``conf/labeler/*.yaml``, what accuracy is measured against, and the labeling budget."""
    params = dict(labeler)
    if "name" not in params:
        raise EkyaError(f"labeler config needs a name, one of {', '.join(LABELER_NAMES)}; got keys {sorted(params)}")
    name = str(params.pop("name"))
    measure_against = str(params.pop("measure_against", "ground_truth"))
    label_frames = check_label_frames(params.pop("label_frames", None), source)
    return WindowLabeling(build_labeler(name, **params), measure_against, label_frames)


def check_label_frames(value: Any, source: StreamSource) -> int | None:
    """The labeling budget ``labeler.label_frames``: null or a whole number of frames, at most the frames a window holds
    where the dataset says how many (else each window checks it when labeled)."""
    if value is None:
        return None
    frames = source.frames_per_window
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (frames is not None and value > frames):
        valid = f"1..{frames} (the frames a window holds)" if frames is not None else "a whole number >= 1"
        raise EkyaError(f"labeler.label_frames={value!r}; valid: {valid}, or null for every frame")
    return value


def throughput_scaling(config: Mapping[str, Any], device: str, measured_path: Path | None = None) -> ThroughputScaling:
    """Training throughput s(r) that ``executor.scaling`` names (see ``ekya.profiling.throughput``): a
    trace's own table at ``measured_path``, or the one measured for the model on ``device``."""
    table = scaling_table(config["executor"]["scaling"], Path(config["paths"]["cache_dir"]) / "models", config["model"]["name"],
                          device, measured_path)
    return table.throughput


def window_settings(config: Mapping[str, Any], window_seconds: float, scaling: ThroughputScaling, trace: Trace | None = None) -> WindowSettings:
    """G, Δ and aMIN: the config's, else the trace's, else 1 GPU, Δ = 0.1 and aMIN = 0."""

    def value(key: str, from_trace: float | None, fallback: float) -> float:
        if config[key] is not None:
            return float(config[key])
        return float(from_trace) if from_trace else fallback

    return WindowSettings(
        gpus=value("gpus", trace.gpus if trace else None, FALLBACK_GPUS),
        delta=value("delta", trace.delta if trace else None, FALLBACK_DELTA),
        min_accuracy=value("min_accuracy", trace.min_accuracy if trace else None, FALLBACK_MIN_ACCURACY),
        window_seconds=float(window_seconds),
        scaling=scaling,
    )


def build_executor(config: Mapping[str, Any]) -> Executor:
    """The run a config describes; validates it without training anything or touching MLflow."""
    executor = config["executor"]
    name = executor["name"]
    seed = int(config["seed"])
    if name == "simulated":
        strict("executor", executor, ("name", "trace", "window_seconds", "scaling", "workers", "placement", *RUNNER_KEYS))
        trace = load_trace(executor["trace"])
        window_seconds = executor["window_seconds"] if executor["window_seconds"] is not None else trace.window_seconds
        settings = window_settings(config, window_seconds, throughput_scaling(config, "cpu", trace.root / "throughput.csv"), trace)
        return SimulatedRun(trace, settings, config["streams"], config["windows"], float(config["profiler"]["noise_std"]), seed,
                            placement_rule(str(executor["placement"]), settings.gpus), build_cache(config["cache"]))
    if name == "local":
        strict("executor", executor, ("name", "device", "workers", "torch_threads", "cost", "scaling", "placement", "jobs", "isolation",
                                      *RUNNER_KEYS))
        device = str(executor["device"])
        # G: the config's, else the visible CUDA devices (on cuda), else 1; more than are visible is refused.
        config = {**config, "gpus": box_gpus(config["gpus"], device)}
        model = build_model_settings(config["model"])
        source = build_learning_source(config["dataset"], config["streams"])
        retrain_configs = load_retrain_space(config["retrain_space"]["configs"])
        stream_names = select(source.streams, config["streams"], "streams")
        if config["labeler"].get("name") == "detector" and not getattr(source, "detects", False):
            raise EkyaError("labeler=detector labels with the dataset's detection stage, which this dataset has none of: "
                            "use dataset=video with dataset.detector=torchvision or mog2, or labeler=ground_truth / golden")
        fewest = min(stream_names, key=source.num_windows)
        if source.num_windows(fewest) < 2:
            raise EkyaError(f"stream {fewest!r} has {source.num_windows(fewest)} window(s) to stream; continuous learning "
                            f"needs at least 2: {source.more_windows_hint()}")
        estimation = build_estimation(config["profiler"], {c.name: c for c in retrain_configs}, stream_names, seed, device)
        check_profiler_fits(estimation.profiler, source)
        settings = window_settings(config, source.window_seconds, throughput_scaling(config, device))
        inference_configs = load_inference_space(config["inference_space"]["configs"])
        jobs = (ConcurrentJobs(device, str(executor["isolation"]), Path(config["paths"]["cache_dir"]) / "jobs", int(executor["torch_threads"]))
                if job_mode(str(executor["jobs"]), device) == "concurrent" else None)
        costs = JobCosts(str(executor["cost"]), device, model.name)
        costs.check(retrain_configs, inference_configs, source.crop_resolution)  # in the table, before anything trains
        return LocalRun(
            source,
            model,
            retrain_configs,
            inference_configs,
            settings,
            estimation,
            costs,
            build_labeling(config["labeler"], source),
            stream_names,
            config["windows"],
            seed,
            str(Path(config["paths"]["cache_dir"]) / "models"),
            device,
            placement=placement_rule(str(executor["placement"]), settings.gpus),
            jobs=jobs,
            cache=build_cache(config["cache"]),
        )
    raise EkyaError(f"unknown executor {name!r}; valid: {', '.join(EXECUTORS)}")


def build_scheduler(config: Mapping[str, Any], executor: Executor, resolve_aliases: bool = True) -> Scheduler:
    """The scheduler of ``conf/scheduler/*.yaml``, with Uniform's ``high``/``low`` resolved for this run.

    Args:
        resolve_aliases: False checks the config only: on a local run an alias stays as it is
            (resolving it needs the base model, which is trained later).
    """
    params = {key: value for key, value in config["scheduler"].items() if key != "name"}
    name = params.get("retrain_config")
    if name is not None and (resolve_aliases or isinstance(executor, SimulatedRun) or name not in RETRAIN_CONFIG_ALIASES):
        params["retrain_config"] = executor.resolve_retrain_config(str(name))
    scheduler = scheduler_named(config["scheduler"]["name"], **params)
    drift = build_drift(config["drift"])
    return RetrainOnDrift(scheduler, drift["threshold"]) if drift["enabled"] else scheduler


def build_cache(cache: Mapping[str, Any]) -> CacheSettings:
    """The ``cache`` group: the model cache's size, candidates, eviction and scope."""
    return CacheSettings(**strict("cache", cache, ("size", "candidates", "eviction", "scope")))


def build_drift(drift: Mapping[str, Any]) -> dict[str, Any]:
    """The ``drift`` group, checked: ``enabled`` (true/false) and ``threshold`` (accuracy points in [0, 100])."""
    drift = strict("drift", drift, ("enabled", "threshold"))
    if not isinstance(drift["enabled"], bool):
        raise EkyaError(f"drift.enabled must be true or false, got {drift['enabled']!r}")
    threshold = drift["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 100:
        raise EkyaError(f"drift.threshold must be a number of accuracy points in [0, 100], got {threshold!r}")
    return {"enabled": drift["enabled"], "threshold": float(threshold)}


def check_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> None:
    """Refuse a command-line override that the chosen executor does not read (one line naming it and the executor)."""
    executor = config["executor"]["name"]
    if executor != "simulated":
        return
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        group = key.split(".")[0].split("@")[0]
        if group in LOCAL_ONLY and key not in SIMULATED_READS:
            raise EkyaError(f"{override.input_line}: executor=simulated does not use {key} (it replays the trace's profiles); "
                            f"drop it, or use executor=local")


def run_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's MLflow params: its flattened config, but ``resume`` (how it was started, not what it computes)."""
    from ekya.tracking.mlflow_logging import flatten

    return flatten({key: value for key, value in config.items() if key != "resume"})


def checkpoints_of(config: Mapping[str, Any], run_id: str) -> WindowCheckpoints:
    """Where run ``run_id`` checkpoints its finished windows: ``${paths.cache_dir}/resume/<run id>``."""
    return WindowCheckpoints(Path(config["paths"]["cache_dir"]) / "resume" / run_id)


def build_resume(config: Mapping[str, Any]) -> Resumption:
    """The MLflow run that ``resume`` (false, true or a run id) continues, checked against the store and the
    run's checkpoint; reads them, writes nothing."""
    resume = config["resume"]
    if isinstance(resume, int) and not isinstance(resume, bool):
        resume = str(resume)  # an all-digit run id
    if not isinstance(resume, (bool, str)) or resume == "":
        raise EkyaError(f"resume={resume!r}; valid: true (the newest unfinished run of this config), false or an MLflow run id")
    if resume is False:
        return Resumption()  # a new run: nothing to read (and MLflow stays unloaded while checking)
    resumption = find_resumption(config["tracking"]["uri"], config["tracking"]["experiment"], run_params(config), resume)
    if resumption.run_id is not None and not resumption.finished and resumption.logged_windows:
        checkpoints = checkpoints_of(config, resumption.run_id)
        lost = sorted(set(resumption.logged_windows) - set(checkpoints.finished_windows()))
        if lost:
            shown = str(resume).lower() if isinstance(resume, bool) else resume
            raise EkyaError(f"resume={shown}: run {resumption.run_id} logged window(s) {', '.join(map(str, lost))}, "
                            f"but no checkpoint of them is under {checkpoints.folder} (paths.cache_dir); run with resume=false")
    return resumption


def check_run(config: Mapping[str, Any], overrides: Iterable[str] = ()) -> Executor:
    """Validate a window-loop config (and its command-line overrides) without training or writing anything; its executor."""
    check_overrides(config, overrides)
    check_log_level(config["log_level"])
    executor = build_executor(config)
    # Uniform's aliases stay unresolved on a local run: resolving them needs the base model, trained later.
    build_scheduler(config, executor, resolve_aliases=False)
    build_resume(config)
    return executor


def build_offline_profiler(config: Mapping[str, Any]) -> OfflineProfiler:
    """The offline profiler of ``conf/profile_offline.yaml``; validates everything before any training starts."""
    from ekya.profiling.offline import OfflineProfiler

    source = build_learning_source(config["dataset"], config["streams"])
    profiler = OfflineProfiler(
        source,
        build_model_settings(config["model"]),
        load_retrain_space(config["retrain_space"]["configs"]),
        load_inference_space(config["inference_space"]["configs"]),
        config["output"],
        seed=config["seed"],
        streams=config["streams"],
        windows=config["windows"],
        start_from=config["start_from"],
        cache_dir=config["base_model_dir"],
        device=config["device"],
        torch_threads=config["torch_threads"],
        progress=bool(config["progress"]),
        cost=str(config["cost"]),
        label_frames=check_label_frames(strict("labeler", config["labeler"], ("label_frames",))["label_frames"], source),
    )
    profiler.costs.check(profiler.retrain_configs, profiler.inference_configs, source.crop_resolution)
    return profiler


def build_profiler_evaluation(config: Mapping[str, Any]) -> ProfilerEvaluation:
    """The profiler evaluation of ``conf/evaluate_profiler.yaml``; validates everything before any training starts."""
    from ekya_studies.profiler_fidelity import ProfilerEvaluation, check_epochs

    epochs = check_epochs(config["epochs"])
    gpus = config["gpus"]
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or gpus <= 0:
        raise EkyaError(f"gpus must be a number > 0, got {gpus!r}")
    profiler = strict("profiler", config["profiler"], ("name", "noise_std", *MICRO_PROFILER_KEYS, *PRUNING_KEYS, *DECISION_KEYS))
    micro_profiler = build_micro_profiler(profiler, config["seed"])
    source = build_learning_source(config["dataset"], config["streams"])
    check_profiler_fits(micro_profiler, source)
    return ProfilerEvaluation(
        source,
        build_model_settings(config["model"]),
        load_retrain_space(config["retrain_space"]["configs"]),
        micro_profiler,
        epochs,
        config["output"],
        seed=config["seed"],
        streams=config["streams"],
        windows=config["windows"],
        cache_dir=config["base_model_dir"],
        device=config["device"],
        torch_threads=config["torch_threads"],
        progress=bool(config["progress"]),
        cost=str(config["cost"]),
    )


def check_golden_training(config: Mapping[str, Any]) -> None:
    """The settings of ``conf/train_golden.yaml``, checked before any data is loaded (the messages name the key)."""
    if config["architecture"] not in GOLDEN_MODEL_NAMES:
        raise EkyaError(f"unknown golden model {config['architecture']!r}; valid golden models: {', '.join(GOLDEN_MODEL_NAMES)}")
    for key in ("epochs", "batch_size"):
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EkyaError(f"{key} must be an int >= 1, got {value!r}")
    learning_rate, fraction = config["learning_rate"], config["validation_fraction"]
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise EkyaError(f"learning_rate must be > 0, got {learning_rate!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise EkyaError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    stream_windows = config["stream_windows"]
    if stream_windows is not None and (isinstance(stream_windows, bool) or not isinstance(stream_windows, int) or stream_windows < 0):
        raise EkyaError(f"stream_windows must be an int >= 0 or null (all windows), got {stream_windows!r}")
    if not config["holdout"] and stream_windows == 0:
        raise EkyaError("no training data: holdout is false and stream_windows is 0; set holdout=true or stream_windows=N")
    if not config["output"]:
        raise EkyaError("output must be the path of the checkpoint to write")

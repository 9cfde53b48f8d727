"""``executor.jobs=concurrent``: the local executor's window played in real time by job processes.

Instead of running the chosen retraining jobs ahead and placing their costs on the timeline,
every inference job and every training job runs at once as a worker process
(:func:`ekya.execution.gpu.jobs.play_concurrently`), each on its placed GPU and, with
``executor.isolation=mps``, held to its share by CUDA MPS (the daemon is started for the window
and stopped after it, also on errors). When a training job finishes the scheduler re-plans and
the jobs restart at their new shares (training resumes from its checkpoint). The window lasts T
wall seconds.

What the run reports uses the same accuracy model as the virtual timeline
(:func:`~ekya.scheduling.dynamics.instantaneous_accuracy`) over the real segments: the serving
model's accuracy (the retrained model's, measured on window k, from its finish on) times the
inference configuration's quality at its share.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ekya.data.base import Window
from ekya.errors import EkyaError
from ekya.execution.gpu.jobs import ConcurrentOutcome, Workers, play_concurrently, write_crops
from ekya.execution.gpu.mps import MPS_CONTROL, MpsDaemon, check_isolation
from ekya.execution.placement import PerGpuPlacement
from ekya.execution.timeline import Segment, StreamProfile, StreamSegment, WindowOutcome
from ekya.scheduling.base import Scheduler
from ekya.scheduling.dynamics import instantaneous_accuracy
from ekya.scheduling.problem import Decision, Problem
from ekya.training.config import RetrainConfig

if TYPE_CHECKING:
    from ekya.models.factory import EdgeModel
    from ekya.training.retrain import TrainResult

#: ``executor.jobs`` values: auto (concurrent on CUDA, virtual elsewhere), virtual, concurrent.
JOB_MODES = ("auto", "virtual", "concurrent")
#: Crops per inference batch in a worker.
INFERENCE_BATCH = 64


def job_mode(mode: str, device: str) -> str:
    """``virtual`` or ``concurrent`` for ``executor.jobs`` on ``device``."""
    if mode not in JOB_MODES:
        raise EkyaError(f"executor.jobs={mode!r}; valid: {', '.join(JOB_MODES)}")
    if mode == "auto":
        return "concurrent" if device.startswith("cuda") else "virtual"
    return mode


class ConcurrentJobs:
    """Plays a local run's windows with job processes.

    Args:
        device: ``cpu`` or ``cuda`` (each job sees its GPU as ``cuda:0``).
        isolation: ``mps`` or ``none`` (read on CUDA only).
        folder: where each window's models, crops, job specs and logs go.
        torch_threads: torch threads of each job process.
    """

    def __init__(self, device: str, isolation: str, folder: str | Path, torch_threads: int = 1) -> None:
        self.device = "cuda" if device.startswith("cuda") else "cpu"
        self.isolation = check_isolation(isolation)
        if self.device == "cuda" and self.isolation == "mps" and shutil.which(MPS_CONTROL) is None:
            raise EkyaError(f"executor.isolation=mps: {MPS_CONTROL} is not on PATH (it comes with the NVIDIA driver); "
                            "valid: executor.isolation=none (jobs share the GPU without limits)")
        self.folder = Path(folder)
        self.torch_threads = int(torch_threads)

    def play(self, window: int, problem: Problem, scheduler: Scheduler, profiles: list[StreamProfile], first: tuple[Decision, float],
             placement: PerGpuPlacement | None, streams: list[tuple[EdgeModel, Window, Window]],
             retrain_configs: dict[str, RetrainConfig], inference_resolution: dict[str, int | None],
             seeds: list[dict[str, int]]) -> tuple[WindowOutcome, dict[int, tuple[str, EdgeModel, float, dict]]]:
        """Play window ``window`` for real; returns its outcome and, per stream that retrained, (config, model, accuracy, status).

        Args:
            streams: per stream, the serving model, the training window (k-1) and the evaluation window (k).
            retrain_configs: the retraining space by name.
            inference_resolution: each inference configuration's resolution.
            seeds: per stream, the training seed of each configuration.
        """
        from ekya.models.checkpoints import load_checkpoint, save_checkpoint
        from ekya.models.predict import evaluate
        from ekya.training.retrain import subsample_indices

        folder = self.folder / f"window-{window}"
        shutil.rmtree(folder, ignore_errors=True)
        paths = []
        for s, (serving, training, evaluation) in enumerate(streams):
            paths.append((str(save_checkpoint(serving, folder / f"{s}-serving.pt")),
                          write_crops(folder / f"{s}-serve.npz", evaluation.images, evaluation.labels)))

        def spec(s: int, kind: str, config: str) -> dict[str, Any]:
            model_in, serve = paths[s]
            base = {"device": self.device, "model_in": model_in, "torch_threads": self.torch_threads}
            if kind == "inference":
                return {**base, "kind": "inference", "data": serve, "batch_size": INFERENCE_BATCH, "seconds": None,
                        "resolution": inference_resolution[config]}
            chosen = retrain_configs[config]
            data = folder / f"{s}-{config}.npz"
            if not data.is_file():
                training = streams[s][1]
                keep = subsample_indices(len(training.labels), chosen.subsample, seeds[s][config])
                write_crops(data, training.images[keep], training.labels[keep])
            return {**base, "kind": "train", "data": str(data), "seed": seeds[s][config], "train_layers": chosen.train_layers,
                    "hidden_size": chosen.hidden_size, "epochs": chosen.epochs, "batch_size": chosen.batch_size,
                    "learning_rate": chosen.learning_rate, "state": str(folder / f"{s}-{config}.state.pt"),
                    "model_out": str(folder / f"{s}-{config}.pt")}

        daemon = MpsDaemon(folder / "mps") if self.device == "cuda" and self.isolation == "mps" else None
        if daemon is not None:
            daemon.start()
        try:
            played = play_concurrently(problem, scheduler, spec, Workers(folder / "jobs", daemon), placement, first_decision=first[0])
        finally:
            if daemon is not None:
                daemon.stop()
        retrained = {}
        for s, finished in enumerate(played.finish_seconds):
            if finished is None:
                continue
            config = _config_before(played, s, finished)
            model = load_checkpoint(folder / f"{s}-{config}.pt")
            retrained[s] = (config, model, evaluate(model, streams[s][2]), played.statuses.get((s, "train"), {}))
        outcome = _outcome(problem, played, profiles, {s: value[2] for s, value in retrained.items()}, first[1])
        outcome.retrained = [retrained[s][0] if s in retrained else None for s in range(len(streams))]
        return outcome, retrained


def _config_before(played: ConcurrentOutcome, stream: int, finished: float) -> str:
    """The configuration of the job that finished at ``finished``: the one running in the segment that ended then."""
    for segment in reversed(played.segments):
        name = segment.placement.decision.streams[stream].retrain_config
        if segment.start < finished + 1e-9 and name is not None:
            return name
    raise RuntimeError(f"stream {stream} finished a job that no decision started")


def _outcome(problem: Problem, played: ConcurrentOutcome, profiles: list[StreamProfile], retrained_accuracy: dict[int, float],
             schedule_seconds: float) -> WindowOutcome:
    window = problem.window_seconds
    integral = np.zeros(len(profiles))
    result = WindowOutcome(accuracy=[], estimated_accuracy=list(played.estimated_accuracy), placed=True,
                           placement_repairs=played.repairs, decisions=played.decisions,
                           schedule_seconds=schedule_seconds, schedule_seconds_total=schedule_seconds)
    segments = list(played.segments)
    if segments:  # the window runs to T even if the processes were stopped a moment earlier
        segments[-1].end = window
    for segment in segments:
        parts = []
        for s, choice in enumerate(segment.placement.decision.streams):
            finish = played.finish_seconds[s]
            serving = retrained_accuracy[s] if finish is not None and finish <= segment.start + 1e-9 else profiles[s].outcomes.serving_accuracy
            demand, factor = profiles[s].outcomes.inference(choice.inference_config)
            accuracy = instantaneous_accuracy(serving, choice.inference_share, demand, factor)
            integral[s] += accuracy * (segment.end - segment.start)
            parts.append(StreamSegment(choice.retrain_config, choice.train_share, choice.inference_config, choice.inference_share,
                                       accuracy, segment.placement.gpu_of(s, "train"), segment.placement.gpu_of(s, "inference")))
            result.gpu_seconds_inference += choice.inference_share * (segment.end - segment.start)
            if choice.retrain_config is not None and choice.train_share > 0 and (finish is None or finish > segment.start):
                result.gpu_seconds_train += choice.train_share * (segment.end - segment.start)
        result.segments.append(Segment(segment.start, segment.end, tuple(parts)))
    result.accuracy = (integral / window).tolist()
    result.retrained = [None] * len(profiles)
    result.adopted = [None] * len(profiles)  # no cached models here: LocalRun refuses cache.size > 0 with executor.jobs=concurrent
    result.finish_seconds = list(played.finish_seconds)
    return result


def train_result(config: RetrainConfig, model: EdgeModel, status: dict, samples: int) -> TrainResult:
    """The :class:`TrainResult` of a job a worker ran (wall seconds of its last run; no per-epoch validation)."""
    from ekya.training.retrain import TrainResult

    seconds = float(status.get("seconds", 0.0))
    steps = int(status.get("step", 0))
    return TrainResult(model=model, config=config, compute_seconds=seconds, seconds_per_epoch=seconds / max(config.epochs, 1),
                       epochs=config.epochs, num_samples=samples, samples_processed=samples * config.epochs,
                       optimizer_steps=steps, train_accuracy=float("nan"))

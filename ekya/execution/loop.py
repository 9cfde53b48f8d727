"""The one window loop, for every executor and every caller (the Prefect flow, the studies, the
tests and the benchmarks).

Per retraining window: profile every stream (labeling and estimates; in parallel) -> build the
window's problem -> schedule -> run the chosen retraining jobs (in parallel) -> play the window
timeline with its re-plans -> commit (retrained models serve from the next window on). How the
steps run is the caller's ``map_steps``: plain calls here (:func:`serial_map`), Prefect tasks in
``flows.window_loop``. With ``checkpoints`` (:mod:`ekya.execution.checkpoints`) each finished window
is checkpointed, and a run that holds a checkpoint already resumes after its window.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, TypeVar

from ekya.execution.drift import drift_references, record_drift, with_drift
from ekya.execution.placement import PerGpuPlacement
from ekya.execution.timeline import StreamProfile, WindowOutcome, outcome_record, play_window, timed_schedule
from ekya.scheduling.base import Scheduler
from ekya.scheduling.problem import Decision, Problem, WindowSettings

if TYPE_CHECKING:
    from ekya.execution.checkpoints import WindowCheckpoints

T = TypeVar("T")


class MapSteps(Protocol):
    """Runs ``step`` once per argument tuple and returns the results in order. ``gpu_shares``, when
    given, is the GPU share each call's job holds (a runner that reserves GPUs, such as Ray's, asks for it)."""

    def __call__(self, step: Callable[..., T], arguments: list[tuple], gpu_shares: list[float] | None = None) -> list[T]: ...


class WindowExecutor(Protocol):
    """An executor's run over a dataset's streams and windows (simulated or local)."""

    stream_names: list[str]
    window_indices: list[int]
    settings: WindowSettings
    #: Places each decision on physical GPUs (``executor.placement=per_gpu``); None: pooled shares.
    placement: PerGpuPlacement | None

    def prepare(self) -> None:
        """One-off work before the first window (e.g. the base model); a second call does nothing."""

    def profile(self, window: int, stream: str) -> StreamProfile:
        """What the scheduler sees of a stream at the window start, what really happens, and the overheads."""

    def retrain(self, window: int, stream: str, config: str) -> None:
        """Run a chosen retraining job ahead of the timeline (streams in parallel)."""

    def commit(self, window: int, retrained: list[str | None], adopted: list[str | None] | None = None) -> None:
        """Retrained models (else the cached models switched to at the window start) serve from the next window on."""

    def resolve_retrain_config(self, name: str) -> str:
        """A configuration name, or Uniform's alias ``high``/``low`` resolved."""

    def save_state(self, folder: Path) -> None:
        """Write into ``folder`` (empty) what carries over to the next window: the models serving each stream and the like."""

    def load_state(self, folder: Path) -> None:
        """Carry on from what :meth:`save_state` wrote (after :meth:`prepare`), as if the saved windows had just run."""


@dataclass(frozen=True)
class WindowResult:
    """One played window.

    Attributes:
        window: window index.
        outcome: the played timeline, accuracies and GPU-seconds.
        overheads: GPU-seconds spent before scheduling, by kind (``labeling``, ``profile``), all streams.
        record: JSON-able record of the window (per stream results and the timeline).
    """

    window: int
    outcome: WindowOutcome
    overheads: dict[str, float]
    record: dict[str, Any]


class WindowObserver(Protocol):
    """Told about each finished window (logging, printing). An observer may also define
    ``windows_resumed(results)``: told once, before the first window played, of the windows a
    resumed run finished before (restored from its checkpoint, not played again)."""

    def window_done(self, result: WindowResult) -> None: ...


def serial_map(step: Callable[..., T], arguments: list[tuple], gpu_shares: list[float] | None = None) -> list[T]:
    """``step`` over every argument tuple in this thread (``gpu_shares`` is not needed here)."""
    return [step(*args) for args in arguments]


def total_overheads(profiles: Sequence[StreamProfile]) -> dict[str, float]:
    """GPU-seconds of overheads of all streams, by kind."""
    totals: dict[str, float] = {}
    for profile in profiles:
        for kind, seconds in profile.overhead_gpu_seconds.items():
            totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def play(problem: Problem, scheduler: Scheduler, profiles: list[StreamProfile], first: tuple[Decision, float],
         placement: PerGpuPlacement | None = None) -> WindowOutcome:
    """Play a window's timeline from the scheduler's first decision (a step of its own, so it can run as a task)."""
    return play_window(problem, scheduler, [p.outcomes for p in profiles], first_decision=first, placement=placement)


def run_window(executor: WindowExecutor, window: int, scheduler: Scheduler, map_steps: MapSteps = serial_map,
               previous: WindowResult | None = None) -> WindowResult:
    """Profile, schedule, retrain and play one window, then let its retrained models serve.

    ``previous`` (the window before, if any) gives each stream's drift (:mod:`ekya.execution.drift`)."""
    streams = executor.stream_names
    profiles = map_steps(executor.profile, [(window, stream) for stream in streams])
    overheads = total_overheads(profiles)
    references = drift_references(previous, streams)
    believed = [with_drift(p.believed, references[stream]) for stream, p in zip(streams, profiles)]
    problem = executor.settings.problem(believed, sum(overheads.values()))
    (first,) = map_steps(timed_schedule, [(problem, scheduler)])
    chosen = [(stream, d.retrain_config, d.train_share) for stream, d in zip(streams, first[0].streams)
              if d.retrain_config is not None and d.train_share > 0]
    map_steps(executor.retrain, [(window, stream, config) for stream, config, _ in chosen], gpu_shares=[share for *_, share in chosen])
    placement = getattr(executor, "placement", None)
    if getattr(executor, "real_time", False):  # the local executor's executor.jobs=concurrent: the jobs run now, side by side
        (outcome,) = map_steps(executor.play_window, [(window, problem, scheduler, profiles, first, placement)])
    else:
        (outcome,) = map_steps(play, [(problem, scheduler, profiles, first, placement)])
    executor.commit(window, outcome.retrained, outcome.adopted)
    record = outcome_record(outcome, streams)
    record["window"] = window
    record_drift(record, problem, outcome, references)
    cache = getattr(executor, "cache", None)
    if cache is not None:
        record["cache"] = {"models": sum(len(entries) for entries in cache.entries.values()), "skipped_checkpoints": cache.skipped}
    estimation = getattr(executor, "window_record", None)  # the local executor's estimates and what they came to
    if estimation is not None:
        record["estimation"] = estimation(window)
    return WindowResult(window, outcome, overheads, record)


def run_windows(
    executor: WindowExecutor,
    scheduler: Scheduler,
    observer: WindowObserver | None = None,
    map_steps: MapSteps = serial_map,
    checkpoints: WindowCheckpoints | None = None,
) -> list[WindowResult]:
    """Every window of ``executor`` in order under ``scheduler``; ``observer`` hears of each as it ends.

    Args:
        executor: the run (simulated or local).
        scheduler: the policy (pure; decides every window and re-plan).
        observer: told of each finished window (e.g. MLflow logging and a printed line).
        map_steps: how steps run: plain calls (default) or Prefect tasks.
        checkpoints: where each finished window is checkpointed (before ``observer`` hears of it). If
            it holds a checkpoint already, the run resumes: the executor is restored, the windows up to
            the checkpoint's are not played again, and play starts at the next one.

    Returns:
        every window's result, the restored ones included.
    """
    map_steps(executor.prepare, [()])
    results = checkpoints.restore(executor) if checkpoints is not None else []
    resumed = getattr(observer, "windows_resumed", None)
    if results and resumed is not None:
        resumed(results)
    for window in executor.window_indices[len(results):]:
        result = run_window(executor, window, scheduler, map_steps, results[-1] if results else None)
        results.append(result)
        if checkpoints is not None:
            checkpoints.save(executor, results)
        if observer is not None:
            observer.window_done(result)
    return results

"""Placing a decision's pooled GPU shares onto physical GPUs, each job on one GPU.

The schedulers allocate shares of a pooled box of G GPUs (a share of 1.5 is one and a half
GPUs). A real job runs on one GPU, so before shares take effect they are packed: every
inference job and every training job with a share goes onto one of G GPUs of capacity 1.0.

1. A job asking for more than one GPU is cut to 1.0 (a repair).
2. First-fit decreasing: jobs by share, largest first, each onto the first GPU it fits.
3. If that leaves a job out, an exact search (depth first, largest job first, GPUs with equal
   load tried once) looks for a packing of every share; it gives up after
   :data:`SEARCH_NODE_LIMIT` steps.
4. If no packing is found, each left-out job goes onto the GPU with the most room and shrinks
   to that room (a repair); nothing else changes.

Shares are kept exactly when a packing exists (and the search finds it). ``Placement.repairs``
counts the jobs whose share changed. Pure: no I/O, no clock; the simulator (``executor.placement=per_gpu``)
and the real executor place the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ekya.errors import EkyaError
from ekya.scheduling.problem import Decision

#: Capacity of one GPU, in GPU share.
GPU_CAPACITY = 1.0
#: Share tolerance: a GPU loaded up to capacity + this counts as not over capacity.
TOLERANCE = 1e-9
#: Steps of the exact search before it gives up and the decision is repaired.
SEARCH_NODE_LIMIT = 20_000
#: ``executor.placement`` values: pooled (no placement) or per_gpu.
PLACEMENTS = ("pooled", "per_gpu")
INFERENCE, TRAIN = "inference", "train"


@dataclass(frozen=True)
class PlacedJob:
    """One job on one GPU.

    Attributes:
        stream: index of its stream in the decision.
        kind: ``inference`` or ``train``.
        gpu: physical GPU index, 0..G-1.
        share: the share it gets on that GPU (of one GPU).
        requested: the share the scheduler gave it.
    """

    stream: int
    kind: str
    gpu: int
    share: float
    requested: float

    @property
    def repaired(self) -> bool:
        return abs(self.share - self.requested) > TOLERANCE


@dataclass(frozen=True)
class Placement:
    """A decision placed on G GPUs.

    Attributes:
        decision: the decision with the placed shares (what really runs).
        jobs: every job with a share > 0, with its GPU.
        gpus: G.
        repairs: jobs whose share changed to fit.
    """

    decision: Decision
    jobs: tuple[PlacedJob, ...]
    gpus: int
    repairs: int

    def load(self, gpu: int) -> float:
        """Share of GPU ``gpu`` in use."""
        return float(sum(job.share for job in self.jobs if job.gpu == gpu))

    def gpu_of(self, stream: int, kind: str) -> int | None:
        """The GPU of stream ``stream``'s ``kind`` job, or None when it has no share."""
        for job in self.jobs:
            if job.stream == stream and job.kind == kind:
                return job.gpu
        return None


def jobs_of(decision: Decision) -> list[tuple[int, str, float]]:
    """(stream, kind, share) of every job of ``decision`` with a share > 0."""
    jobs = []
    for index, choice in enumerate(decision.streams):
        if choice.inference_share > 0:
            jobs.append((index, INFERENCE, float(choice.inference_share)))
        if choice.retrain_config is not None and choice.train_share > 0:
            jobs.append((index, TRAIN, float(choice.train_share)))
    return jobs


def _first_fit_decreasing(shares: list[float], gpus: int) -> list[int | None]:
    loads = [0.0] * gpus
    bins: list[int | None] = []
    for share in shares:
        for gpu in range(gpus):
            if loads[gpu] + share <= GPU_CAPACITY + TOLERANCE:
                loads[gpu] += share
                bins.append(gpu)
                break
        else:
            bins.append(None)
    return bins


def _exact(shares: list[float], gpus: int, node_limit: int) -> list[int] | None:
    """A packing of every share (sorted decreasing) on ``gpus`` bins, or None (none, or the search gave up)."""
    loads = [0.0] * gpus
    bins = [0] * len(shares)
    suffix = [0.0] * (len(shares) + 1)
    for k in range(len(shares) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + shares[k]
    nodes = 0

    def search(k: int) -> bool:
        nonlocal nodes
        if k == len(shares):
            return True
        nodes += 1
        if nodes > node_limit:
            return False
        free = sum(max(0.0, GPU_CAPACITY - load) for load in loads)
        if suffix[k] > free + TOLERANCE * len(shares):
            return False
        tried: set[float] = set()
        for gpu in range(gpus):
            key = round(loads[gpu], 9)
            if key in tried or loads[gpu] + shares[k] > GPU_CAPACITY + TOLERANCE:
                continue
            tried.add(key)
            loads[gpu] += shares[k]
            bins[k] = gpu
            if search(k + 1):
                return True
            loads[gpu] -= shares[k]
        return False

    return list(bins) if search(0) else None


def place(decision: Decision, gpus: int, node_limit: int = SEARCH_NODE_LIMIT) -> Placement:
    """``decision``'s jobs on ``gpus`` GPUs of capacity 1.0, each job on one GPU (see the module doc).

    Raises:
        EkyaError: ``gpus`` is not an integer >= 1.
    """
    if isinstance(gpus, bool) or int(gpus) != gpus or gpus < 1:
        raise EkyaError(f"placing jobs on GPUs needs a whole number of GPUs >= 1, got {gpus!r}")
    gpus = int(gpus)
    jobs = sorted(jobs_of(decision), key=lambda job: (-job[2], job[0], job[1]))
    shares = [min(share, GPU_CAPACITY) for _, _, share in jobs]
    bins = _first_fit_decreasing(shares, gpus)
    if any(gpu is None for gpu in bins):
        exact = _exact(shares, gpus, node_limit)
        if exact is not None:
            bins = list(exact)
        else:  # worst fit, shrinking a job that does not fit to the room left
            loads = [0.0] * gpus
            bins = []
            for k, share in enumerate(shares):
                gpu = min(range(gpus), key=lambda g: (loads[g], g))
                shares[k] = min(share, max(0.0, GPU_CAPACITY - loads[gpu]))
                loads[gpu] += shares[k]
                bins.append(gpu)
    placed = tuple(PlacedJob(stream, kind, int(gpu), share, requested)
                   for (stream, kind, requested), share, gpu in zip(jobs, shares, bins))
    new_shares = {(job.stream, job.kind): job.share for job in placed}
    streams = tuple(
        replace(choice,
                inference_share=new_shares.get((index, INFERENCE), choice.inference_share),
                train_share=new_shares.get((index, TRAIN), choice.train_share))
        for index, choice in enumerate(decision.streams)
    )
    ordered = tuple(sorted(placed, key=lambda job: (job.stream, job.kind != INFERENCE)))
    return Placement(Decision(streams, decision.estimated_accuracy), ordered, gpus, sum(job.repaired for job in placed))


@dataclass(frozen=True)
class PerGpuPlacement:
    """The rule ``executor.placement=per_gpu``: every decision is placed on ``gpus`` GPUs before it runs."""

    gpus: int

    def __post_init__(self) -> None:
        if isinstance(self.gpus, bool) or int(self.gpus) != self.gpus or self.gpus < 1:
            raise EkyaError(f"executor.placement=per_gpu needs a whole number of GPUs >= 1, got gpus={self.gpus!r}; "
                            "use executor.placement=pooled for a fractional G")

    def __call__(self, decision: Decision) -> Placement:
        return place(decision, self.gpus)


def placement_rule(name: str, gpus: float) -> PerGpuPlacement | None:
    """The rule ``executor.placement`` names for G = ``gpus``: None for ``pooled`` (shares as the scheduler gave them)."""
    if name == "pooled":
        return None
    if name == "per_gpu":
        if abs(gpus - round(gpus)) > 1e-9:
            raise EkyaError(f"executor.placement=per_gpu needs a whole number of GPUs, got gpus={gpus:g}; "
                            "use executor.placement=pooled for a fractional G")
        return PerGpuPlacement(int(round(gpus)))
    raise EkyaError(f"executor.placement={name!r}; valid: {', '.join(PLACEMENTS)}")


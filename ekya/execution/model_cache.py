"""The model cache: every model a run retrains is kept, and the best few are offered again later.

After RECL (NSDI'23) and the Ekya paper's Figure 12: a model retrained on an earlier window may
fit the current one better than the serving model, at no training cost. Every model a stream
retrains enters its cache with the window it was trained in and a summary of that window's data
(its class mix: the fraction of crops of each class). At each window start the executor asks for
:meth:`ModelCache.candidates`: the ``candidates`` cached models whose training data's class mix is
closest to the labeled window's (total-variation distance; ties and models without a summary go
to the newest), from the stream's own cache or, with ``scope=all``, from every stream's. The
executor estimates each on the window's labeled sample and offers them to the scheduler beside the
retraining configurations (:attr:`~ekya.scheduling.problem.StreamProblem.cached_names`); a chosen
one serves from the window's first second.

Each stream keeps at most ``size`` models; adding one more evicts the least recently used
(``eviction=lru``: trained or switched to longest ago) or the oldest (``fifo``: trained longest
ago). ``size=0`` turns the cache off. What a cached model *is* (a trace's (window, configuration)
pair, a model in memory) is the executor's business: the cache holds it as an opaque handle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from ekya.errors import EkyaError

#: ``cache.eviction`` values.
EVICTIONS = ("lru", "fifo")
#: ``cache.scope`` values: a stream's own models, or every stream's.
SCOPES = ("stream", "all")

Handle = TypeVar("Handle")


@dataclass(frozen=True)
class CacheSettings:
    """The ``cache`` config group.

    Attributes:
        size: models kept per stream (0: no cache).
        candidates: cached models offered to the scheduler per stream and window.
        eviction: ``lru`` or ``fifo``.
        scope: ``stream`` (its own models) or ``all`` (every stream's).
    """

    size: int = 0
    candidates: int = 3
    eviction: str = "lru"
    scope: str = "stream"

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise EkyaError(f"cache.size must be a whole number of models >= 0 (0: no cache), got {self.size!r}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise EkyaError(f"cache.candidates must be a whole number >= 1, got {self.candidates!r}")
        if self.eviction not in EVICTIONS:
            raise EkyaError(f"unknown cache.eviction {self.eviction!r}; valid: {', '.join(EVICTIONS)}")
        if self.scope not in SCOPES:
            raise EkyaError(f"unknown cache.scope {self.scope!r}; valid: {', '.join(SCOPES)}")

    @property
    def enabled(self) -> bool:
        return self.size > 0


@dataclass
class CachedModel:
    """One cached model.

    Attributes:
        name: its name as the scheduler sees it, ``cache:<stream>/w<window>/<config>``.
        stream: the stream it was retrained for.
        window: the window it was retrained in (on the labeled data of the window before).
        config: its retraining configuration.
        class_mix: fraction of its training crops of each class (None: no summary, as in a trace).
        last_used: when it was last added or switched to, as a count of such events (LRU's clock).
    """

    name: str
    stream: str
    window: int
    config: str
    class_mix: list[float] | None
    last_used: int


def cached_name(stream: str, window: int, config: str) -> str:
    return f"cache:{stream}/w{window}/{config}"


def class_mix(counts: np.ndarray) -> list[float]:
    """Fraction of crops in each class, from the counts per class (:meth:`ekya.data.base.Window.class_counts`)."""
    counts = np.asarray(counts, dtype=float)
    return (counts / max(counts.sum(), 1.0)).tolist()


class ModelCache(Generic[Handle]):
    """The cached models of every stream of a run, with their handles.

    Args:
        settings: size, candidates, eviction, scope.
        stream_names: the run's streams.
    """

    def __init__(self, settings: CacheSettings, stream_names: list[str]) -> None:
        self.settings = settings
        self.stream_names = list(stream_names)
        self.entries: dict[str, list[CachedModel]] = {stream: [] for stream in stream_names}
        self.handles: dict[str, Handle] = {}
        #: Cached models whose checkpoint failed to load on resuming (skipped).
        self.skipped = 0
        #: Adds and switches so far (LRU's clock).
        self.clock = 0

    def add(self, stream: str, window: int, config: str, handle: Handle, summary: list[float] | None = None) -> CachedModel:
        """Keep a model ``stream`` retrained in ``window``; evicts one if the stream's cache is full."""
        self.clock += 1
        entry = CachedModel(cached_name(stream, window, config), stream, window, config, summary, self.clock)
        entries = self.entries[stream]
        entries.append(entry)
        self.handles[entry.name] = handle
        age = (lambda e: e.last_used) if self.settings.eviction == "lru" else (lambda e: e.window)
        while len(entries) > self.settings.size:
            victim = min(entries, key=age)  # the first of equals: the one added first
            entries.remove(victim)
            del self.handles[victim.name]
        return entry

    def entry(self, name: str) -> CachedModel:
        for entries in self.entries.values():
            for entry in entries:
                if entry.name == name:
                    return entry
        raise KeyError(name)

    def use(self, name: str) -> Handle:
        """The handle of ``name``, which a stream has just switched to (LRU's clock moves)."""
        self.clock += 1
        self.entry(name).last_used = self.clock
        return self.handles[name]

    def candidates(self, stream: str, summary: list[float] | None = None, exclude: str | None = None) -> list[CachedModel]:
        """The models to offer ``stream``: the ``candidates`` nearest to ``summary`` (class mix of the labeled window),
        newest first among equals; ``exclude`` (the serving model) is never offered."""
        pool = self.entries[stream] if self.settings.scope == "stream" else [e for s in self.stream_names for e in self.entries[s]]
        pool = [entry for entry in pool if entry.name != exclude]

        def distance(entry: CachedModel) -> float:
            if summary is None or entry.class_mix is None:
                return 0.0
            return 0.5 * float(np.abs(np.asarray(entry.class_mix) - np.asarray(summary)).sum())

        ranked = sorted(pool, key=lambda entry: (round(distance(entry), 12), -entry.window, entry.name))
        return ranked[: self.settings.candidates]

    def state(self) -> dict[str, Any]:
        """The entries (not the handles), JSON-able."""
        return {"entries": {stream: [vars(entry) for entry in entries] for stream, entries in self.entries.items()},
                "skipped": self.skipped, "clock": self.clock}

    def restore(self, state: dict[str, Any], handles: dict[str, Handle | None]) -> None:
        """Continue from :meth:`state` with ``handles`` by name; an entry whose handle is None (its checkpoint did not load)
        is dropped and counted in :attr:`skipped`."""
        self.entries = {stream: [] for stream in self.stream_names}
        self.handles = {}
        self.skipped = int(state.get("skipped", 0))
        self.clock = int(state.get("clock", 0))
        for stream, entries in state["entries"].items():
            for fields in entries:
                handle = handles.get(fields["name"])
                if handle is None:
                    self.skipped += 1
                    continue
                self.entries[stream].append(CachedModel(**fields))
                self.handles[fields["name"]] = handle

"""Checkpoints of a run's finished windows, so that a killed or failed run resumes after its last one.

When a window finishes, :func:`~ekya.execution.loop.run_windows` saves one checkpoint: every
finished window's result (what the run logs and summarises), the executor's state (the models
serving each stream and whatever else carries over to the next window, written by the executor's
``save_state``) and the global random generators' states. A checkpoint is a folder
``window-<k>/`` written under a temporary name and renamed into place, so a process killed at any
moment leaves the previous checkpoint or the new one whole, never half of one. Only the newest is
kept.

Nothing else carries over between windows: schedulers are pure (a problem in, a decision out; no
state between calls), and every random draw of the executors is seeded from the run's seed, the
window, the stream (and the configuration), never from a generator that runs on from window to window.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ekya.errors import EkyaError
from ekya.execution.loop import WindowExecutor, WindowResult
from ekya.execution.timeline import Segment, StreamSegment, WindowOutcome

#: Tag of a checkpoint's ``state.json``, so another file is recognised as none.
CHECKPOINT_FORMAT = "ekya-window-checkpoint/1"
_PREFIX = "window-"


def result_state(result: WindowResult) -> dict[str, Any]:
    """A finished window as JSON-able data (floats round-trip exactly)."""
    return {"window": result.window, "outcome": dataclasses.asdict(result.outcome), "overheads": result.overheads,
            "record": result.record}


def result_from_state(state: dict[str, Any]) -> WindowResult:
    """The inverse of :func:`result_state`."""
    outcome = dict(state["outcome"])
    outcome["segments"] = [Segment(s["start"], s["end"], tuple(StreamSegment(**part) for part in s["streams"]))
                           for s in outcome["segments"]]
    return WindowResult(int(state["window"]), WindowOutcome(**outcome), dict(state["overheads"]), state["record"])


def random_state() -> dict[str, Any]:
    """The global generators' states: Python's, NumPy's and (when it is loaded) torch's CPU generator."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {"python": random.getstate(), "numpy": [name, keys.tolist(), position, has_gauss, gauss]}
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state().tolist()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Put back what :func:`random_state` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    if "torch" in state:
        import torch

        torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


class WindowCheckpoints:
    """The checkpoints of one run, in one folder (e.g. ``<cache_dir>/resume/<run id>``).

    Args:
        folder: where the run's checkpoints go; created by the first :meth:`save`.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def latest(self) -> Path | None:
        """The newest whole checkpoint, or None."""
        if not self.folder.is_dir():
            return None
        found = [path for path in self.folder.iterdir()
                 if path.name.startswith(_PREFIX) and path.name[len(_PREFIX):].isdigit() and (path / "state.json").is_file()]
        return max(found, key=lambda path: int(path.name[len(_PREFIX):]), default=None)

    def _read(self, checkpoint: Path) -> dict[str, Any]:
        path = checkpoint / "state.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise EkyaError(f"checkpoint {path}: unreadable ({error}); delete {self.folder} to run the windows again") from None
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise EkyaError(f"checkpoint {path}: not a window checkpoint ({CHECKPOINT_FORMAT}); delete {self.folder} to run the windows again")
        return state

    def finished_windows(self) -> list[int]:
        """The windows the newest checkpoint holds as finished, in order ([] without one); restores nothing."""
        checkpoint = self.latest()
        return [] if checkpoint is None else [int(w["window"]) for w in self._read(checkpoint)["windows"]]

    def save(self, executor: WindowExecutor, results: list[WindowResult]) -> Path:
        """Checkpoint the run after its last finished window (``results[-1]``); older checkpoints are removed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{_PREFIX}{results[-1].window}"
        scratch = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{final.name}.", suffix=".tmp"))
        try:
            (scratch / "executor").mkdir()
            executor.save_state(scratch / "executor")
            state = {"format": CHECKPOINT_FORMAT, "windows": [result_state(r) for r in results], "random": random_state()}
            (scratch / "state.json").write_text(json.dumps(state, default=_jsonable))
            if final.exists():  # the same window saved again: the older copies stay until this one is in place
                shutil.rmtree(final)
            os.replace(scratch, final)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        for path in self.folder.iterdir():  # older checkpoints, and what a killed save left behind
            if path == final:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return final

    def restore(self, executor: WindowExecutor) -> list[WindowResult]:
        """Put ``executor`` (prepared) and the random generators back as they were after the newest checkpoint's
        window; the finished windows' results, in order ([] without a checkpoint: the run starts at its first window).

        Raises:
            EkyaError: the checkpoint is unreadable, or its windows are not the first windows of ``executor``.
        """
        checkpoint = self.latest()
        if checkpoint is None:
            return []
        state = self._read(checkpoint)
        results = [result_from_state(w) for w in state["windows"]]
        windows = [r.window for r in results]
        if windows != list(executor.window_indices[: len(windows)]):
            raise EkyaError(f"checkpoint {checkpoint}: windows {windows} are not the first windows of this run "
                            f"({list(executor.window_indices)}); delete {self.folder} to run the windows again")
        executor.load_state(checkpoint / "executor")
        set_random_state(state["random"])
        return results

    def clear(self) -> None:
        """Remove the run's checkpoints (its last window is logged and the run FINISHED)."""
        shutil.rmtree(self.folder, ignore_errors=True)

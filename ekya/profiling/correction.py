"""Estimates that learn from what the executor observes: an online correction of estimated accuracy.

After each window the platform knows what its choices really reached: the accuracy of the model
that served at the window start, and of each model it retrained, on the window's labeled data
(labeled at the next window's start). The micro-profiler estimates both on a sample of the window
before, so its error has a systematic part (drift makes the next window harder, a short run on a
small sample over- or under-shoots a family of configurations) that repeats from window to window.

:class:`AccuracyCorrection` keeps, per stream and *family* (the serving model, or the number of
layers a configuration trains), the residuals ``realized - estimated`` (accuracy fractions) it
was shown, and corrects the next estimates by their shrunk mean::

    stream offset  m_s     = sum(r over the stream) / (n_s + prior)
    family offset  c_{s,f} = (sum(r over the family) + prior * m_s) / (n_f + prior)

so a family seen often is corrected by its own mean, one seen rarely by the stream's, and a
stream seen once only part of the way (``prior`` is the weight, in observations, of the shrinkage
toward no correction). Pure numpy; its state is JSON-able, so a resumed run corrects as the
uninterrupted one would.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ekya.errors import EkyaError

#: The family of the model that serves at the window start.
SERVING_FAMILY = "serving"
#: ``profiler.correction`` values: ``none`` (estimates as profiled) or ``online`` (:class:`AccuracyCorrection`).
CORRECTIONS = ("none", "online")


def config_family(train_layers: Any) -> str:
    """The family of a retraining configuration: how many layers it trains (``layers=1``, ``layers=all``)."""
    return f"layers={train_layers}"


class AccuracyCorrection:
    """Per-stream, per-family offsets fitted online to realized minus estimated accuracy.

    Args:
        prior: weight, in observations, of the shrinkage toward the stream's offset (families) and
            toward no correction (streams); > 0.
    """

    def __init__(self, prior: float = 1.0) -> None:
        if isinstance(prior, bool) or not np.isfinite(prior) or prior <= 0:
            raise EkyaError(f"profiler.correction_prior must be a number of observations > 0, got {prior!r}")
        self.prior = float(prior)
        # stream -> family -> [sum of residuals, count]
        self._residuals: dict[str, dict[str, list[float]]] = {}

    def observe(self, stream: str, family: str, estimated: float, realized: float) -> None:
        """Record that ``family`` of ``stream`` was estimated at ``estimated`` and reached ``realized`` (fractions)."""
        totals = self._residuals.setdefault(stream, {}).setdefault(family, [0.0, 0])
        totals[0] += float(realized) - float(estimated)
        totals[1] += 1

    def offset(self, stream: str, family: str) -> float:
        """The correction (accuracy fraction, added to an estimate) of ``family`` on ``stream``; 0 before any observation."""
        families = self._residuals.get(stream, {})
        total = sum(value[0] for value in families.values())
        count = sum(value[1] for value in families.values())
        stream_offset = total / (count + self.prior)
        own_total, own_count = families.get(family, (0.0, 0))
        return float((own_total + self.prior * stream_offset) / (own_count + self.prior))

    def correct(self, stream: str, families: Sequence[str], accuracies: Sequence[float] | np.ndarray) -> np.ndarray:
        """``accuracies`` (fractions) of ``stream``'s ``families`` plus their offsets, clipped to [0, 1]."""
        offsets = np.array([self.offset(stream, family) for family in families], dtype=np.float64)
        return np.clip(np.asarray(accuracies, dtype=np.float64) + offsets, 0.0, 1.0)

    def state(self) -> dict[str, Any]:
        """JSON-able state (:meth:`restore` reads it back)."""
        return {"prior": self.prior, "residuals": self._residuals}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`'s output."""
        self.prior = float(state["prior"])
        self._residuals = {stream: {family: [float(value[0]), int(value[1])] for family, value in families.items()}
                           for stream, families in state["residuals"].items()}

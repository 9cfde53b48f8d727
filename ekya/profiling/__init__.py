"""Micro-profiler: accuracy-curve fit and extrapolation, cost model, configuration pruning.

The names below are loaded on first use (PEP 562), so that importing one submodule (a trace,
the noise) does not import the others' dependencies (SciPy for the curve fit).
"""

from __future__ import annotations

from ekya.lazy import lazy_exports

#: Name -> the submodule that defines it.
_EXPORTS = {
    "CostModel": "cost_model",
    "ThroughputTable": "cost_model",
    "DEFAULT_FAMILY": "curve_fit",
    "FAMILIES": "curve_fit",
    "AccuracyCurve": "curve_fit",
    "extrapolate": "curve_fit",
    "fit_accuracy_curve": "curve_fit",
    "ConfigEstimate": "micro_profiler",
    "MicroProfiler": "micro_profiler",
    "ProfileRun": "micro_profiler",
    "check_sample_labels": "micro_profiler",
    "total_profiling_gpu_seconds": "micro_profiler",
    "add_estimate_noise": "noise",
    "frontier_distance": "pruning",
    "pareto_frontier": "pruning",
    "prune_configs": "pruning",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)

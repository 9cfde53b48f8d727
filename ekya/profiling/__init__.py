"""Micro-profiler: accuracy-curve fit and extrapolation, cost model, configuration pruning."""

from ekya.profiling.cost_model import CostModel, ThroughputTable
from ekya.profiling.curve_fit import DEFAULT_FAMILY, FAMILIES, AccuracyCurve, extrapolate, fit_accuracy_curve
from ekya.profiling.micro_profiler import (
    ConfigEstimate,
    MicroProfiler,
    ProfileRun,
    check_sample_labels,
    total_profiling_gpu_seconds,
)
from ekya.profiling.noise import add_estimate_noise
from ekya.profiling.pruning import frontier_distance, pareto_frontier, prune_configs

__all__ = [
    "DEFAULT_FAMILY",
    "FAMILIES",
    "AccuracyCurve",
    "ConfigEstimate",
    "CostModel",
    "MicroProfiler",
    "ProfileRun",
    "ThroughputTable",
    "add_estimate_noise",
    "check_sample_labels",
    "extrapolate",
    "fit_accuracy_curve",
    "frontier_distance",
    "pareto_frontier",
    "prune_configs",
    "total_profiling_gpu_seconds",
]

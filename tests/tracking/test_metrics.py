"""Per-window metrics of the estimation records: how far the estimates were from what was reached."""

import pytest

from ekya.tracking.metrics import estimation_metrics


def test_estimation_errors_are_in_accuracy_points():
    records = {
        "cam0": {"configs": ["head", "all"], "estimated_accuracy": [0.8, 0.9], "true_accuracy": [0.7, 0.95],
                 "serving_estimated_accuracy": 0.6, "serving_realized_accuracy": 0.5, "retrained": "all",
                 "retrained_realized_accuracy": 0.95},
        "cam1": {"configs": ["head"], "estimated_accuracy": [0.5], "true_accuracy": [0.5],
                 "serving_estimated_accuracy": 0.7, "serving_realized_accuracy": 0.7, "retrained": None},
    }
    metrics = estimation_metrics(records)
    assert metrics["estimation/serving_error_points"] == pytest.approx(5.0)
    assert metrics["estimation/retrained_error_points"] == pytest.approx(-5.0)
    assert metrics["estimation/audit_abs_error_median_points"] == pytest.approx(5.0)  # |10|, |-5|, |0|


def test_no_record_no_metric():
    assert estimation_metrics({}) == {}
    unaudited = {"cam0": {"configs": ["head"], "estimated_accuracy": [0.8], "serving_estimated_accuracy": 0.6,
                          "serving_realized_accuracy": 0.6, "retrained": None}}
    assert set(estimation_metrics(unaudited)) == {"estimation/serving_error_points"}


def test_reuse_metrics_average_the_known_drifts_and_count_the_cache():
    from ekya.tracking.metrics import reuse_metrics

    record = {"streams": {"a": {"drift_points": 4.0}, "b": {"drift_points": None}, "c": {"drift_points": 1.0}},
              "cache": {"models": 5, "skipped_checkpoints": 1}}
    assert reuse_metrics(record) == {"drift/mean_points": 2.5, "cache/models": 5.0, "cache/skipped_checkpoints": 1.0}
    assert reuse_metrics({"streams": {"a": {"drift_points": None}}}) == {}

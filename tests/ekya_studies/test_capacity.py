"""Capacity: the largest stream count each scheduler sustains per GPU count at an accuracy target."""

import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.tracking.mlflow_logging import RunLogger
from ekya_studies.capacity import capacity_markdown, capacity_table, write_capacity
from tests.ekya_studies.helpers import tiny_gpus_sweep

# accuracy[scheduler][gpus] over streams 2, 4, 6, 8
ACCURACY = {
    ("thief", "Ekya"): {1: [0.80, 0.72, 0.66, 0.60], 2: [0.85, 0.80, 0.74, 0.71]},
    ("uniform", "Uniform (Cfg 1, 50%)"): {1: [0.71, 0.55, 0.40, 0.30], 2: [0.78, 0.71, 0.60, 0.50]},
    ("no_retrain", "No retraining"): {1: [0.60, 0.60, 0.55, 0.50], 2: [0.60, 0.60, 0.60, 0.60]},
}


@pytest.fixture
def sweep():
    rows = []
    for (scheduler, label), by_gpus in ACCURACY.items():
        for gpus, values in by_gpus.items():
            for streams, accuracy in zip((2, 4, 6, 8), values):
                for seed, offset in ((0, -0.005), (1, 0.005)):  # seeds average to the table's value
                    rows.append({"scheduler": scheduler, "label": label, "streams": float(streams), "gpus": float(gpus),
                                 "seed": seed, "accuracy_mean": accuracy + offset})
    return pd.DataFrame(rows)


def test_capacity_is_the_largest_stream_count_reaching_the_target(sweep):
    table = capacity_table(sweep, 0.7)
    assert list(table.columns) == [1.0, 2.0]
    assert table.to_dict("index") == {
        "Ekya": {1.0: 4, 2.0: 8},
        "Uniform (Cfg 1, 50%)": {1.0: 2, 2.0: 4},
        "No retraining": {1.0: 0, 2.0: 0},
    }
    assert capacity_table(sweep, 0.6).loc["No retraining"].tolist() == [4, 8]


def test_capacity_for_one_gpu_count_and_markdown(sweep):
    table = capacity_table(sweep, 0.7, gpus=2)
    assert table.to_dict("index") == {"Ekya": {2.0: 8}, "Uniform (Cfg 1, 50%)": {2.0: 4}, "No retraining": {2.0: 0}}
    text = capacity_markdown(table, 0.7, max_streams=8)
    assert "mean accuracy >= 70.0%" in text
    assert "| Ekya | >= 8 |" in text and "| Uniform (Cfg 1, 50%) | 4 |" in text


@pytest.mark.parametrize(
    "target, gpus, message",
    [
        (70, None, "accuracy target must be a fraction in \\[0, 1\\], got 70"),
        (0.7, 3, "gpus=3 was not swept; swept GPU counts: 1, 2"),
    ],
)
def test_bad_capacity_requests_say_what_is_valid(sweep, target, gpus, message):
    with pytest.raises(EkyaError, match=message):
        capacity_table(sweep, target, gpus)


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """A 4-point sweep of experiment gpus_sweep (thief and Uniform x 1, 2 GPUs) plus a run that logged nothing."""
    tmp_path = tmp_path_factory.mktemp("capacity")
    uri, accuracy = tiny_gpus_sweep(tmp_path)
    with RunLogger(uri, "gpus_sweep", "interrupted point", {"scheduler.name": "fair"}, {}, str(tmp_path / "sweeps" / "gpus_sweep")):
        pass
    return tmp_path, uri, accuracy


def test_capacity_table_of_the_sweep(tiny_sweep):
    tmp_path, uri, accuracy = tiny_sweep
    target = (accuracy[("thief", 1)] + accuracy[("uniform", 1)]) / 2  # thief reaches it on 1 GPU, Uniform does not
    assert accuracy[("thief", 1)] > accuracy[("uniform", 1)]
    path = write_capacity(uri, "gpus_sweep", target, str(tmp_path / "capacity"))
    text = path.read_text()
    assert "| Ekya | >= 3 |" in text
    expected_uniform_2 = ">= 3" if accuracy[("uniform", 2)] >= target else "0"
    assert f"| Uniform (Cfg 1, 50%) | 0 | {expected_uniform_2} |" in text
    assert "Skipped runs:\n- interrupted point (" in text
    assert (tmp_path / "capacity" / "capacity.csv").exists()


def test_capacity_of_an_experiment_without_runs_is_a_clear_error(tiny_sweep):
    _, uri, _ = tiny_sweep
    with pytest.raises(EkyaError, match="no MLflow experiment 'ablation'"):
        write_capacity(uri, "ablation", 0.5, "unused")

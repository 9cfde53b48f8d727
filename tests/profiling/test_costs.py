"""Job costs: the reference table makes them a function of the work; inference demand follows the stream load."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ekya.data.base import StreamLoad
from ekya.data.synthetic import SyntheticSource
from ekya.errors import EkyaError
from ekya.inference.config import InferenceConfig
from ekya.models.factory import build_model
from ekya.profiling.costs import JobCosts, family, inference_demand
from ekya.profiling.reference_costs import ReferenceCosts
from ekya.training.config import RetrainConfig

RETRAIN = {"head": RetrainConfig("head", 1, 64, 0.5, 2), "all": RetrainConfig("all", "all", 64, 1.0, 5)}
INFERENCE = {"full": InferenceConfig("full", 1.0, None), "low": InferenceConfig("low", 0.5, 16)}


def test_demand_is_frames_per_second_times_sampling_rate_times_objects_per_frame_times_seconds_per_crop():
    assert inference_demand(StreamLoad(30.0, 4.0), 0.5, 0.001) == pytest.approx(0.06)
    assert inference_demand(StreamLoad(10.0, 0.0), 1.0, 0.001) == 0.0


@pytest.fixture(scope="module")
def reference_costs(tmp_path_factory):
    source = SyntheticSource(num_streams=1, num_windows=2, crops_per_window=40, frames_per_window=8, holdout_streams=1,
                             holdout_windows=2, resolution=32)
    costs = JobCosts("reference", "cpu", "resnet18", progress=False)
    costs.prepare(build_model("resnet18"), source.holdout(), RETRAIN, INFERENCE, INFERENCE["full"], {}, 0,
                  str(tmp_path_factory.mktemp("cache")))
    return costs


def test_reference_costs_are_the_tables_rates_times_the_work(reference_costs):
    table = ReferenceCosts.shipped("cpu")
    rates = table.training_rates("resnet18", 32, 1)
    result = SimpleNamespace(num_samples=100, samples_processed=200, validation_accuracy=[0.5, 0.6])
    frozen, training, validation = reference_costs.run_seconds(RETRAIN["head"], result, validation_size=10)
    assert frozen == pytest.approx(rates.frozen * 100)
    assert training == pytest.approx(rates.train * 200)
    assert validation == pytest.approx((rates.frozen + rates.validation * 2) * 10)
    assert reference_costs.seconds_per_sample[family(RETRAIN["all"])]["feature"] == 0.0
    # A run that reused both frozen passes did not spend them.
    reused = SimpleNamespace(**vars(result), reused_passes=("train", "validation"), reused_seconds=9.0)
    assert reference_costs.reused_seconds(RETRAIN["head"], reused, validation_size=10) == pytest.approx(rates.frozen * (100 + 10))
    assert reference_costs.reused_seconds(RETRAIN["head"], SimpleNamespace(num_samples=100, reused_passes=()), 10) == 0.0


def test_inference_demand_follows_the_stream_load_and_the_tables_resolution(reference_costs):
    table = ReferenceCosts.shipped("cpu")
    inference = reference_costs.inference_table(StreamLoad(30.0, 5.0), INFERENCE)
    assert inference["full"] == (pytest.approx(30.0 * 5.0 * table.inference_seconds("resnet18", 32)), 1.0)
    assert inference["low"][0] == pytest.approx(30.0 * 0.5 * 5.0 * table.inference_seconds("resnet18", 16))
    assert 0.0 <= inference["low"][1] <= 1.0
    assert reference_costs.inference_table(StreamLoad(60.0, 5.0), INFERENCE)["full"][0] == pytest.approx(2 * inference["full"][0])


def test_a_resolution_the_table_lacks_is_refused_before_anything_trains():
    costs = JobCosts("reference", "cpu", "resnet18")
    with pytest.raises(EkyaError, match=r"inference config odd: resolution=20: .*valid resolutions: 16, 24, 32, 48, 64"):
        costs.check(RETRAIN.values(), [InferenceConfig("odd", 1.0, 20)], 32)
    with pytest.raises(EkyaError, match=r"crop resolution=40: .*valid resolutions"):
        costs.check(RETRAIN.values(), INFERENCE.values(), 40)
    costs.check(RETRAIN.values(), [InferenceConfig("odd", 1.0, 20)], None)  # the resolution is not known yet: checked when loaded


def test_unknown_cost_modes_are_refused():
    with pytest.raises(EkyaError, match=r"executor.cost='free'; valid: reference, calibrated, measured or the path of a .csv"):
        JobCosts("free", "cpu")
    with pytest.raises(EkyaError, match="cost table .*missing.csv does not exist"):
        JobCosts("missing.csv", "cpu")

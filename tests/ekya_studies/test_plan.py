"""The plan of `make reproduce`: which studies and points, composed as Hydra composes them; bad options."""

import itertools
import re

import pytest
from hydra import compose, initialize_config_dir

from ekya.errors import EkyaError
from ekya_studies.plan import available_studies, build_plan, check_inputs, compose_plain, compose_points
from flows.config import build_offline_profiler
from tests.flows.helpers import CONFIG_DIR

def plan_for(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="reproduce", overrides=[
            f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"paths.cache_dir={tmp_path}/cache",
            f"paths.data_dir={tmp_path}/data", f"sweeps_dir={tmp_path}/sweeps", f"headline.output={tmp_path}/reports/headline.md", *overrides,
        ])
        return build_plan(cfg, build_offline_profiler)


def own_sweep_params(study):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={study}"], return_hydra_config=True)
    return {key: str(value).split(",") for key, value in cfg.hydra.sweeper.params.items()}


def value_of(config, key):
    for part in key.split("."):
        config = config[part]
    return config["name"] if isinstance(config, dict) else config


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return plan_for(tmp_path_factory.mktemp("reproduce"))


def test_every_study_but_the_worked_example_runs_on_the_reproduction_trace(plan):
    names = [study["name"] for study in plan["studies"]]
    assert sorted(names) == sorted(set(available_studies()) - {"paper_example"})
    for study in plan["studies"]:
        assert len(study["configs"]) == len(study["points"]) == len(set(study["points"])) > 0
        for config in study["configs"]:
            assert config["executor"]["name"] == "simulated"
            assert config["executor"]["trace"] == plan["trace"]["dir"]
            assert config["tracking"]["experiment"] == study["name"]
        assert study["sweep_dir"].endswith(study["name"])
    assert plan["trace"]["profile"]["output"] == plan["trace"]["dir"]
    assert plan["trace"]["profile"]["dataset"]["num_streams"] >= 10


@pytest.mark.parametrize("study", ["streams_sweep", "gpus_sweep", "capacity", "ablation", "delta_sweep", "noise_sweep"])
def test_a_study_holds_every_point_of_its_yaml_sweep(plan, study):
    params = own_sweep_params(study)
    (entry,) = [s for s in plan["studies"] if s["name"] == study]
    seen = {tuple(str(value_of(c, key)) for key in params) for c in entry["configs"]}
    for values in itertools.product(*params.values()):
        assert tuple(values) in seen, f"{study}: missing {dict(zip(params, values))}"


def test_the_uniform_variants_of_the_yaml_headers_are_run_too(plan):
    (gpus,) = [s for s in plan["studies"] if s["name"] == "gpus_sweep"]
    uniform = {(c["scheduler"]["retrain_config"], c["scheduler"]["inference_share"], c["gpus"])
               for c in gpus["configs"] if c["scheduler"]["name"] == "uniform"}
    assert uniform == set(itertools.product(["high", "low"], [0.3, 0.5, 0.9], [0.25, 0.5, 1, 2, 3, 4, 6, 8]))
    (window,) = [s for s in plan["studies"] if s["name"] == "window_length"]
    assert sorted({c["executor"]["window_seconds"] for c in window["configs"]}) == [8, 17, 25, 33, 50]
    assert {c["scheduler"]["name"] for c in window["configs"]} == {"thief", "fair", "uniform"}


def test_fast_composition_gives_the_configs_hydra_composes(plan, tmp_path):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        base = [f"paths.cache_dir={tmp_path}", "experiment=noise_sweep"]
        points = [("scheduler=thief", "profiler.noise_std=5", "seed=2"),
                  ("scheduler=uniform", "scheduler.retrain_config=low", "scheduler.inference_share=0.3", "delta=0.5")]
        assert compose_points(base, points, "test") == [compose_plain("config", [*base, *p], "test") for p in points]
        with pytest.raises(EkyaError, match="test, point gpuz=2"):
            compose_points(base, [("gpuz=2",)], "test")


def test_sim_vs_local_runs_the_same_points_with_both_executors(plan):
    settings = plan["sim_vs_local"]
    assert len(settings["points"]) >= 2
    for point in settings["points"]:
        simulated, local = point["simulated"], point["local"]
        assert (simulated["executor"]["name"], local["executor"]["name"]) == ("simulated", "local")
        assert simulated["scheduler"] == local["scheduler"]
        assert simulated["streams"] == local["streams"] == settings["streams"]
        assert simulated["gpus"] == local["gpus"]
        assert simulated["windows"] == local["windows"] + 1 == settings["windows"] + 1  # the simulator also plays window 0
        assert local["dataset"] == plan["trace"]["profile"]["dataset"]
        assert local["retrain_space"] == plan["trace"]["profile"]["retrain_space"]
        assert local["profiler"]["name"] == "oracle"
        assert simulated["tracking"]["experiment"] == local["tracking"]["experiment"] == "sim_vs_local"


def test_model_reuse_replays_the_reproduction_trace_with_every_variant_as_new_runs(plan):
    simulated, local = plan["model_reuse"]["jobs"]
    assert [p["variant"] for p in simulated["points"]] == ["off", "cache", "drift", "cache_drift"]
    for point in simulated["points"]:
        config = point["config"]
        assert config["executor"]["name"] == "simulated" and config["executor"]["trace"] == plan["trace"]["dir"]
        assert config["resume"] is False and config["tracking"]["experiment"] == "model_reuse"
    assert local["points"][3]["config"]["executor"]["name"] == "local"
    assert local["points"][3]["config"]["cache"]["size"] == 4 and local["points"][3]["config"]["drift"]["enabled"] is True


@pytest.mark.parametrize("overrides, message", [
    (["stages=[studies,bogus]"], "unknown stage(s) 'bogus'; valid: trace, studies, reports, sim_vs_local, model_reuse, headline"),
    (["~studies.delta_sweep"], "studies neither run nor skipped: delta_sweep"),
    (["+studies.nope=[]"], "unknown study 'nope'"),
    (['studies.ablation=[["gpus=interval(1,2)"]]'], "only comma-separated sweeps"),
    (["reports.accuracy_target=70"], "reports.accuracy_target=70; valid: a fraction in [0, 1]"),
    (["headline.study=paper_example"], "headline.study='paper_example' is not a study that is run"),
])
def test_bad_options_are_refused_before_anything_runs(tmp_path, overrides, message):
    with pytest.raises(EkyaError, match=re.escape(message)):
        plan_for(tmp_path, "stages=[reports]", *overrides)
    assert not (tmp_path / "mlruns").exists()


def test_a_headline_output_that_is_a_folder_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "headline").mkdir()
    with pytest.raises(EkyaError, match="headline.output=.* is a folder"):
        plan_for(tmp_path, "stages=[headline]", f"headline.output={tmp_path}/headline")
    assert plan_for(tmp_path, "stages=[headline]")["headline"]["output"] == f"{tmp_path}/reports/headline.md"
    assert not (tmp_path / "reports").exists() and not (tmp_path / "mlruns").exists()


def test_stages_that_read_earlier_results_need_them(tmp_path):
    with pytest.raises(EkyaError, match="no MLflow experiment 'streams_sweep'"):
        check_inputs(plan_for(tmp_path, "stages=[reports]"))
    with pytest.raises(EkyaError, match=r"trace folder .*/traces/reproduce does not exist.*; add the stage `trace` to profile it"):
        check_inputs(plan_for(tmp_path, "stages=[headline]"))

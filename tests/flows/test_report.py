"""The report flow on a real (tiny) sweep of window-loop flow runs, its command line, and the study yamls."""

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from ekya.tracking.mlflow_logging import RunLogger
from flows.report import report_options, run_report
from flows.window_loop import run_config
from tests.ekya_studies.helpers import POINTS, tiny_trace
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT, compose_config

STUDIES = ("streams_sweep", "gpus_sweep", "capacity", "ablation", "window_length", "delta_sweep", "noise_sweep")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 4-point sweep of experiment gpus_sweep (thief and Uniform x 1, 2 GPUs) plus a run that logged nothing."""
    tmp_path = tmp_path_factory.mktemp("report")
    trace = tiny_trace(tmp_path / "trace")
    sweep_dir = str(tmp_path / "sweep")
    accuracy = {}
    for scheduler, gpus in POINTS:
        config = compose_config(tmp_path, "experiment=gpus_sweep", f"executor.trace={trace}", "streams=null",
                                f"scheduler={scheduler}", f"gpus={gpus}")
        accuracy[(scheduler, gpus)] = run_config(config, sweep_dir)["summary/accuracy_mean"]
    uri = config["tracking"]["uri"]
    with RunLogger(uri, "gpus_sweep", "interrupted point", {"scheduler.name": "fair"}, {}, sweep_dir) as logger:
        broken = logger.run_id
    return tmp_path, uri, accuracy, broken


def report_config(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="report", overrides=[f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", *overrides])


def test_report_writes_figures_and_summary_and_logs_them_to_the_sweep(sweep):
    tmp_path, uri, accuracy, broken = sweep
    output = tmp_path / "reports" / "gpus_sweep"
    options = report_options(report_config(tmp_path, "experiment=gpus_sweep", f"report.output_dir={output}"))
    assert options["experiment"] == "gpus_sweep" and options["all_sweeps"]
    paths = run_report(options)
    assert sorted(os.path.basename(p) for p in paths) == ["accuracy_vs_gpus.png", "summary.md"]
    assert (output / "accuracy_vs_gpus.png").read_bytes()[:4] == b"\x89PNG"
    summary = (output / "summary.md").read_text()
    assert f"| Ekya | {100 * accuracy[('thief', 1)]:.2f} | {100 * accuracy[('thief', 2)]:.2f} |" in summary
    assert f"| Uniform (Cfg 1, 50%) | {100 * accuracy[('uniform', 1)]:.2f} | {100 * accuracy[('uniform', 2)]:.2f} |" in summary
    assert "### GPU saving factor" in summary
    gain = 100 * (accuracy[("thief", 1)] - accuracy[("uniform", 1)])
    assert "At streams=3, gpus=1 (3 streams per GPU)" in summary and f"**{gain:+.2f} accuracy points**" in summary
    assert f"- interrupted point ({broken}): no summary/accuracy_mean metric" in summary

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("gpus_sweep").experiment_id
    (parent,) = client.search_runs([experiment], filter_string="tags.`ekya.sweep_parent` = 'true'")
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert logged == {"report/accuracy_vs_gpus.png", "report/summary.md"}


def cli(tmp_path, module, *overrides):
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run(
        [sys.executable, "-m", module, f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
         f"hydra.run.dir={tmp_path}/outputs", *overrides],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=300,
    )


def test_report_of_an_experiment_without_runs_lists_the_existing_ones(sweep):
    tmp_path, *_ = sweep
    result = cli(tmp_path, "flows.report", "experiment=ablation")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: no MLflow experiment 'ablation'" in result.stderr
    assert "experiments that exist: Default, gpus_sweep" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("study", STUDIES)
def test_every_study_composes_as_a_simulated_sweep_of_its_own_experiment(tmp_path, study):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={study}"], return_hydra_config=True)
    assert cfg.tracking.experiment == study
    assert cfg.executor.name == "simulated"
    params = cfg.hydra.sweeper.params
    assert "scheduler" in params
    swept = {key for key in params if key != "scheduler"}
    assert swept, f"{study} sweeps no knob"
    for key in swept:
        assert len(str(params[key]).split(",")) >= 2 or key == "seed"

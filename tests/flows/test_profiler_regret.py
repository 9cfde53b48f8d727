"""`python -m flows.profiler_regret`: a tiny study end to end, and bad input exits 2 with one line and writes nothing."""

import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ekya.errors import EkyaError
from ekya_studies.profiler_regret import build_regret_plan
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT
from tests.flows.test_window_loop import tiny_local


def regret_options(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="profiler_regret", overrides=[
            f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"paths.cache_dir={tmp_path}/cache",
            f"output_dir={tmp_path}/reports", f"sweeps_dir={tmp_path}/sweeps", *overrides])
        return OmegaConf.to_container(cfg, resolve=True)


def plan(tmp_path, options):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return build_regret_plan(options)


def test_the_plan_runs_every_variant_at_every_seed_of_each_job_and_resumes(tmp_path):
    options = regret_options(tmp_path, "seeds=[1,2]", "run_jobs=[paper_regime]")
    (job,) = plan(tmp_path, options)["jobs"]
    assert job["name"] == "paper_regime" and job["sweep_dir"] == f"{tmp_path}/sweeps/paper_regime"
    assert [(p["variant"], p["seed"]) for p in job["points"]] == [
        ("micro", 1), ("micro", 2), ("micro_corrected", 1), ("micro_corrected", 2), ("oracle", 1), ("oracle", 2),
        ("holdout_oracle", 1), ("holdout_oracle", 2)]
    for point in job["points"]:
        config = point["config"]
        assert config["executor"]["name"] == "local" and config["resume"] is True and config["seed"] == point["seed"]
        assert config["dataset"]["num_streams"] == 4 and config["gpus"] == 0.5
        assert config["tracking"]["experiment"] == "profiler_regret"
    micro, corrected, oracle, holdout = (job["points"][k]["config"]["profiler"] for k in (0, 2, 4, 6))
    assert micro["audit"] is True and corrected["correction"] == "online" and oracle["name"] == "oracle"
    assert holdout["name"] == "holdout_oracle"
    (job,) = plan(tmp_path, {**options, "run_variants": ["micro_corrected"]})["jobs"]
    assert [(p["variant"], p["seed"]) for p in job["points"]] == [("micro_corrected", 1), ("micro_corrected", 2)]


@pytest.mark.parametrize("change, message", [
    ({"variants": {"micro": ["profiler=micro"]}}, "variants has no 'oracle' entry"),
    ({"jobs": {}}, "jobs is empty"),
    ({"seeds": [1, 1]}, "seeds must be a non-empty list of distinct ints"),
    ({"run_jobs": ["nosuch"]}, "run_jobs: unknown job(s) nosuch; valid: make_run, paper_regime"),
    ({"jobs": {"bad": "gpus=2"}}, "jobs.bad must be a list of overrides"),
    ({"run_variants": ["nosuch"]}, "run_variants: unknown variant(s) nosuch; valid: micro, micro_corrected, oracle, holdout_oracle"),
])
def test_bad_plans_are_refused(tmp_path, change, message):
    options = {**regret_options(tmp_path), **change}
    with pytest.raises(EkyaError) as error:
        plan(tmp_path, options)
    assert message in str(error.value)


@pytest.mark.parametrize("module, argument, message", [
    ("flows.profiler_regret", "seeds=[]", "seeds must be a non-empty list"),
    ("flows.profiler_regret", "run_jobs=[nosuch]", "run_jobs: unknown job(s) nosuch"),
    ("flows.profiler_regret", "jobs.make_run=['gpus=0']", "gpus must be"),
    ("flows.window_loop", "profiler.correction=sometimes", "profiler.correction='sometimes'; valid: none, online"),
    ("flows.window_loop", "profiler.correction_prior=0", "profiler.correction_prior must be a number of observations > 0"),
    ("flows.window_loop", "profiler.audit=maybe", "profiler.audit must be true or false"),
    ("flows.window_loop", "profiler.validation_size=361",
     "profiler.validation_size=361 and a profiling sample of 40 (profiler.sample_fraction=0.1) do not fit in a window "
     "(dataset.crops_per_window=400) of 400 labeled crops; valid: validation_size <= 360"),
])
def test_the_command_line_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, module, argument, message):
    result = subprocess.run(
        [sys.executable, "-m", module, f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
         f"paths.cache_dir={tmp_path}/cache", *([f"output_dir={tmp_path}/reports"] if module == "flows.profiler_regret" else []),
         argument],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "cache").exists() and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_a_tiny_study_logs_every_run_and_writes_the_regret_and_the_chained_fidelity(tmp_path):
    from flows.profiler_regret import run_regret_job

    options = regret_options(tmp_path, "seeds=[1]")
    options["jobs"] = {"tiny": [o for o in tiny_local("executor.workers=1") if not o.startswith(("executor=", "profiler."))]}
    options["variants"]["micro"].append("profiler.sample_fraction=0.25")
    options["variants"]["micro_corrected"].append("profiler.sample_fraction=0.25")
    study = plan(tmp_path, options)
    (job,) = study["jobs"]
    run_regret_job(job, study["tracking_uri"], study["experiment"])
    folder = tmp_path / "reports" / "tiny"
    assert {p.name for p in folder.iterdir()} == {"summary.md", "regret.csv", "chained_errors.csv", "regret.png", "chained.png"}
    regret = pd.read_csv(folder / "regret.csv")
    assert set(regret["variant"]) == {"micro", "micro_corrected", "oracle", "holdout_oracle"}
    assert (regret[regret["variant"] == "oracle"]["regret_points"] == 0).all()
    errors = pd.read_csv(folder / "chained_errors.csv")
    assert {"config", "serving"} <= set(errors["kind"]) and errors["chosen"].any()
    summary = (folder / "summary.md").read_text()
    assert "Regret against the oracle" in summary and "Chained fidelity" in summary and "Where the regret comes from" in summary
    # A re-run skips every finished run and writes the same tables.
    run_regret_job(job, study["tracking_uri"], study["experiment"])
    assert pd.read_csv(folder / "regret.csv").equals(regret)

"""`python -m flows.model_reuse`: a small study end to end on the simulator, and bad input exits 2 with one line."""

import subprocess
import sys

import pandas as pd
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from ekya_studies.plan import variant_plan
from tests.conftest import PAPER_EXAMPLE
from tests.flows.helpers import CONFIG_DIR, PROJECT_ROOT


def reuse_plan(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="model_reuse", overrides=[
            f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"paths.cache_dir={tmp_path}/cache",
            f"output_dir={tmp_path}/reports", f"sweeps_dir={tmp_path}/sweeps", f'jobs.reproduce=["executor=simulated","executor.trace={PAPER_EXAMPLE}"]',
            *overrides])
        return variant_plan(OmegaConf.to_container(cfg, resolve=True))


def test_every_variant_runs_on_the_simulator_and_the_report_compares_them(tmp_path):
    from flows.model_reuse import run_reuse_plan

    plan = reuse_plan(tmp_path, "run_jobs=[reproduce]")
    (job,) = plan["jobs"]
    assert [p["variant"] for p in job["points"]] == ["off", "cache", "drift", "cache_drift"]
    cache, drift = job["points"][3]["config"]["cache"], job["points"][3]["config"]["drift"]
    assert cache["size"] == 4 and drift["enabled"] is True
    run_reuse_plan(plan)
    frame = pd.read_csv(tmp_path / "reports" / "reproduce" / "reuse.csv")
    assert sorted(frame["variant"].unique()) == ["cache", "cache_drift", "drift", "off"]
    assert sorted(frame["window"].unique()) == [0, 1]
    summary = (tmp_path / "reports" / "reproduce" / "summary.md").read_text()
    assert "| off |" in summary and "| cache_drift |" in summary
    assert (tmp_path / "reports" / "reproduce" / "reuse.png").stat().st_size > 0
    again = (tmp_path / "reports" / "reproduce" / "reuse.csv").read_text()
    run_reuse_plan(plan)  # finished runs are skipped; the same report
    assert (tmp_path / "reports" / "reproduce" / "reuse.csv").read_text() == again


def test_an_unknown_job_exits_2_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "flows.model_reuse", "run_jobs=[nosuch]",
                             f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db", f"hydra.run.dir={tmp_path}/outputs"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: run_jobs: unknown job(s) nosuch; valid: reproduce, make_run, long_run"]
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()

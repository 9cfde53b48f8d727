"""Reading sweeps back from MLflow, the paper's names, headline numbers, figures and summary."""

import time

import pandas as pd
import pytest

from ekya.errors import EkyaError
from ekya.tracking.mlflow_logging import RunLogger
from ekya_studies.report import (
    gain_at_highest_contention,
    gpu_saving,
    gpus_to_reach,
    load_sweep,
    log_report,
    panels,
    report_sweep,
    scheduler_label,
    summary_markdown,
    write_report,
)


def log_point(uri, experiment, sweep_dir, scheduler, gpus, accuracy, streams=4, **params):
    """One child run as the window loop logs it: params, two windows of accuracy, the summary."""
    all_params = {"scheduler.name": scheduler, "streams": streams, "gpus": gpus, "seed": 0, "resolved.gpus": float(gpus),
                  "resolved.delta": 0.1, "profiler.noise_std": 0.0, **params}
    with RunLogger(uri, experiment, f"{scheduler} gpus={gpus}", all_params, {"dataset": "trace"}, sweep_dir) as logger:
        logger.log_metrics({"accuracy/mean": accuracy - 0.1}, step=0)
        logger.log_metrics({"accuracy/mean": accuracy + 0.1}, step=1)
        logger.log_metrics({"summary/accuracy_mean": accuracy})
        return logger.run_id


def frame(rows):
    """A report frame from ``(scheduler, label, streams, gpus, accuracy)`` rows."""
    records = [{"scheduler": s, "label": label, "dataset": "trace", "seed": 0.0, "streams": float(n), "gpus": float(g),
                "delta": 0.1, "window_seconds": float("nan"), "estimate_noise_std": 0.0, "accuracy_mean": a}
               for s, label, n, g, a in rows]
    return pd.DataFrame(records)


@pytest.mark.parametrize(
    "arguments, label",
    [
        (("thief",), "Ekya"),
        (("thief", None, None, "improved"), "Ekya"),
        (("thief", None, None, "paper"), "Ekya (Algorithm 1)"),
        (("fixed_res", None, "0.5"), "Ekya-FixedRes"),
        (("fixed_config", "high"), "Ekya-FixedConfig"),
        (("fair",), "Fair"),
        (("no_retrain",), "No retraining"),
        (("optimal",), "Optimal"),
        (("uniform", "high", "0.5"), "Uniform (Cfg 1, 50%)"),
        (("uniform", "low", "0.3"), "Uniform (Cfg 2, 30%)"),
        (("uniform", "c07", 0.9), "Uniform (c07, 90%)"),
    ],
)
def test_schedulers_are_named_as_in_the_paper(arguments, label):
    assert scheduler_label(*arguments) == label


def test_gpus_to_reach_interpolates_between_swept_counts():
    assert gpus_to_reach([4, 1, 2], [0.7, 0.3, 0.5], 0.6) == pytest.approx(3.0)
    assert gpus_to_reach([1, 2, 4], [0.3, 0.5, 0.7], 0.2) == 1.0  # no extrapolation below the sweep
    assert gpus_to_reach([1, 2, 4], [0.3, 0.5, 0.7], 0.75) is None


def test_gpu_saving_finds_the_best_baseline_and_its_factor():
    sweep = frame([
        ("thief", "Ekya", 10, 1, 0.6), ("thief", "Ekya", 10, 2, 0.7), ("thief", "Ekya", 10, 4, 0.8),
        ("uniform", "Uniform (Cfg 1, 50%)", 10, 1, 0.3), ("uniform", "Uniform (Cfg 1, 50%)", 10, 2, 0.5),
        ("uniform", "Uniform (Cfg 1, 50%)", 10, 4, 0.7),
        ("fair", "Fair", 10, 1, 0.2), ("fair", "Fair", 10, 2, 0.4), ("fair", "Fair", 10, 4, 0.6),
        ("fixed_res", "Ekya-FixedRes", 10, 1, 0.9),  # an ablation is never a baseline
    ])
    savings = gpu_saving(sweep)
    assert [(s.gpus, s.baseline, s.baseline_gpus, s.factor) for s in savings[:2]] == [
        (1.0, "Uniform (Cfg 1, 50%)", pytest.approx(3.0), pytest.approx(3.0)),
        (2.0, "Uniform (Cfg 1, 50%)", pytest.approx(4.0), pytest.approx(2.0)),
    ]
    assert (savings[2].baseline, savings[2].factor, savings[2].factor_above) == (None, None, 1.0)


def test_gain_is_taken_at_the_most_streams_per_gpu():
    sweep = frame([
        ("thief", "Ekya", 2, 2, 0.80), ("thief", "Ekya", 8, 2, 0.60),
        ("uniform", "Uniform (Cfg 1, 50%)", 2, 2, 0.75), ("uniform", "Uniform (Cfg 1, 50%)", 8, 2, 0.40),
        ("uniform", "Uniform (Cfg 2, 30%)", 8, 2, 0.45), ("uniform", "Uniform (Cfg 2, 30%)", 2, 2, 0.70),
        ("thief", "Ekya", 16, 2, 0.50),  # no Uniform run at this point
    ])
    gain = gain_at_highest_contention(sweep)
    assert gain.point == {"streams": 8.0, "gpus": 2.0}
    assert gain.streams_per_gpu == 4.0
    assert gain.best_uniform == "Uniform (Cfg 2, 30%)"
    assert gain.gain_points == pytest.approx(15.0)
    assert gain_at_highest_contention(sweep[sweep["scheduler"] == "thief"]) is None


def test_two_swept_knobs_make_one_panel_per_gpu_count():
    sweep = frame([(s, s, n, g, 0.5) for s in ("thief", "fair") for n in (2, 4) for g in (1, 2)])
    assert [(x, fixed, len(part)) for x, fixed, part in panels(sweep)] == [
        ("streams", {"gpus": 1.0}, 4), ("streams", {"gpus": 2.0}, 4)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Experiment ``study``: an older sweep and a newer one that redoes one point; one run lacks metrics."""
    tmp_path = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    old = str(tmp_path / "sweep-old")
    log_point(uri, "study", old, "thief", 1, 0.50)
    log_point(uri, "study", old, "thief", 2, 0.60)
    log_point(uri, "study", old, "uniform", 1, 0.30, **{"scheduler.retrain_config": "high", "scheduler.inference_share": 0.5})
    time.sleep(0.01)  # the newer sweep starts strictly later (MLflow times are in ms)
    new = str(tmp_path / "sweep-new")
    log_point(uri, "study", new, "uniform", 2, 0.40, **{"scheduler.retrain_config": "high", "scheduler.inference_share": 0.5})
    log_point(uri, "study", new, "thief", 2, 0.65)  # redoes a point of the older sweep
    with RunLogger(uri, "study", "crashed point", {"scheduler.name": "fair"}, {}, new) as broken:
        pass
    with RunLogger(uri, "plain", "single run", {}, {}):
        pass
    return uri, broken.run_id


def test_load_sweep_reads_every_sweep_keeps_the_newest_point_and_lists_skipped_runs(store):
    uri, broken = store
    runs = load_sweep(uri, "study")
    assert len(runs.parent_run_ids) == 2
    table = {(r.label, r.gpus): r.accuracy_mean for r in runs.frame.itertuples()}
    assert table == {("Ekya", 1.0): 0.50, ("Ekya", 2.0): 0.65, ("Uniform (Cfg 1, 50%)", 1.0): 0.30,
                     ("Uniform (Cfg 1, 50%)", 2.0): 0.40}
    assert runs.frame["streams"].tolist() == [4.0] * 4
    assert runs.frame.loc[0, "window_accuracies"] == pytest.approx([runs.frame.loc[0, "accuracy_mean"] - 0.1, runs.frame.loc[0, "accuracy_mean"] + 0.1])
    assert [(s.run_id, s.run_name) for s in runs.skipped] == [(broken, "crashed point")]
    assert "no summary/accuracy_mean metric" in runs.skipped[0].reason

    latest = load_sweep(uri, "study", all_sweeps=False)
    assert sorted(latest.frame["label"]) == ["Ekya", "Uniform (Cfg 1, 50%)"]
    only_old = load_sweep(uri, "study", parent_run_id=runs.parent_run_ids[1])
    assert len(only_old.frame) == 3 and not only_old.skipped


def test_unknown_experiment_or_sweep_lists_what_exists(store):
    uri, _ = store
    with pytest.raises(EkyaError, match=r"no MLflow experiment 'nope' .*experiments that exist: Default, plain, study"):
        load_sweep(uri, "nope")
    with pytest.raises(EkyaError, match=r"'plain' .* has no sweep .*experiments with sweeps: study"):
        load_sweep(uri, "plain")
    with pytest.raises(EkyaError, match=r"no sweep with parent run id 'abc'"):
        load_sweep(uri, "study", parent_run_id="abc")


def test_report_writes_figure_and_summary_and_logs_them(store, tmp_path):
    from mlflow.tracking import MlflowClient

    uri, broken = store
    runs = load_sweep(uri, "study")
    paths = write_report(runs, tmp_path / "report")
    assert [p.name for p in paths] == ["accuracy_vs_gpus.png", "summary.md"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = paths[1].read_text()
    assert "| Ekya | 50.00 | 65.00 |" in summary
    assert "| Uniform (Cfg 1, 50%) | 30.00 | 40.00 |" in summary
    assert "![accuracy_vs_gpus](accuracy_vs_gpus.png)" in summary
    # Ekya's 50% on 1 GPU: Uniform reaches it at 1 + (0.5-0.3)/(0.4-0.3) = 3 GPUs > the swept 2.
    assert "| 1 | 50.00 | none reaches it | > swept range | > 2.00x |" in summary
    assert "At streams=4, gpus=1 (4 streams per GPU): Ekya 50.00% vs Uniform (Cfg 1, 50%) 30.00%: **+20.00 accuracy points**" in summary
    assert f"crashed point ({broken}): no summary/accuracy_mean metric" in summary

    log_report(uri, runs.parent_run_ids[0], paths)
    logged = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(runs.parent_run_ids[0], "report")}
    assert logged == {"report/accuracy_vs_gpus.png", "report/summary.md"}


def test_sweep_without_a_swept_knob_gets_a_bar_chart(store, tmp_path):
    uri, _ = store
    runs = load_sweep(uri, "study")
    runs.frame = runs.frame[runs.frame["gpus"] == 2.0]
    paths = write_report(runs, tmp_path / "bars")
    assert [p.name for p in paths] == ["accuracy_by_scheduler.png", "summary.md"]
    assert "| Ekya | 65.00 |" in summary_markdown(runs)


def test_report_sweep_writes_logs_and_says_what_it_wrote(store, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    uri, broken = store
    old = load_sweep(uri, "study").parent_run_ids[1]
    paths = report_sweep(uri, "study", str(tmp_path / "old"), parent_run_id=old)
    assert [p.name for p in paths] == ["accuracy_vs_gpus.png", "summary.md"]
    logged = {a.path for a in MlflowClient(tracking_uri=uri).list_artifacts(old, "report")}
    assert logged == {"report/accuracy_vs_gpus.png", "report/summary.md"}
    printed = capsys.readouterr().out
    assert f"3 runs of 1 sweep(s), 0 skipped; wrote accuracy_vs_gpus.png, summary.md to {tmp_path / 'old'}" in printed
    report_sweep(uri, "study", str(tmp_path / "new"), all_sweeps=False, log_to_mlflow=False)
    assert f"skipped crashed point ({broken})" in capsys.readouterr().out

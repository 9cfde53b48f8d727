"""The regret of estimated decisions against the oracle, and the chained fidelity of audited runs."""

import numpy as np
import pandas as pd
import pytest

from ekya_studies.profiler_regret import (
    RegretRun,
    chained_errors,
    chained_summary,
    chained_figure,
    per_window_regret,
    regret_figure,
    regret_markdown,
    regret_summary,
    regret_table,
    variant_label,
)


def audited_record(estimated, true, retrained, realized, serving_estimated=0.6, serving_realized=0.5):
    return {"configs": ["head", "all"], "estimated_accuracy": estimated, "profiled_accuracy": estimated,
            "true_accuracy": true, "retrained": retrained, "retrained_realized_accuracy": realized,
            "serving_estimated_accuracy": serving_estimated, "serving_realized_accuracy": serving_realized}


RUNS = [
    RegretRun("micro", 1, {1: 0.70, 2: 0.60}, {1: {"cam0": audited_record([0.8, 0.9], [0.7, 0.75], "all", 0.75)},
                                                2: {"cam0": audited_record([0.8, 0.7], [0.8, 0.6], "head", 0.8)}}),
    RegretRun("micro", 2, {1: 0.72, 2: 0.70}),
    RegretRun("micro_corrected", 1, {1: 0.74, 2: 0.66}),
    RegretRun("oracle", 1, {1: 0.75, 2: 0.66}),
    RegretRun("oracle", 2, {1: 0.70, 2: 0.70}),
]


def test_regret_is_the_oracles_accuracy_minus_the_variants_at_the_same_seed_and_window():
    table = regret_table(RUNS)
    micro = table[table["variant"] == "micro"].set_index(["seed", "window"])["regret_points"]
    assert micro.to_dict() == pytest.approx({(1, 1): 5.0, (1, 2): 6.0, (2, 1): -2.0, (2, 2): 0.0})
    assert (table[table["variant"] == "oracle"]["regret_points"] == 0).all()
    summary = regret_summary(table).set_index("variant")
    assert summary.loc["micro", "regret_points"] == pytest.approx(2.25)
    assert summary.loc["micro", "regret_seed_1"] == pytest.approx(5.5) and summary.loc["micro", "regret_seed_2"] == pytest.approx(-1.0)
    assert summary.loc["micro", "worst_window_regret_points"] == pytest.approx(6.0)
    assert per_window_regret(table).loc["micro_corrected"].tolist() == pytest.approx([1.0, 0.0])


def test_a_seed_without_an_oracle_run_has_no_regret():
    table = regret_table([RegretRun("micro", 3, {1: 0.5}), RegretRun("oracle", 1, {1: 0.6})])
    assert set(table["variant"]) == {"oracle"}


def test_chained_errors_compare_every_estimate_with_the_truth_from_the_served_model():
    errors = chained_errors(RUNS[:1])
    configs = errors[errors["kind"] == "config"]
    assert len(configs) == 4 and configs["chosen"].sum() == 2
    assert configs["error_points"].tolist() == pytest.approx([10.0, 15.0, 0.0, 10.0])
    serving = errors[errors["kind"] == "serving"]
    assert serving["error_points"].tolist() == pytest.approx([10.0, 10.0])
    summary = chained_summary(errors).set_index("window")
    assert summary.loc[1, "median_abs_error_points"] == pytest.approx(12.5) and summary.loc[1, "chosen_median_abs_error_points"] == pytest.approx(15.0)
    assert summary.loc[2, "bias_points"] == pytest.approx(5.0)


def test_a_run_without_audit_contributes_its_chosen_configuration_and_serving_model():
    record = {"configs": ["head", "all"], "estimated_accuracy": [0.8, 0.9], "profiled_accuracy": [0.8, 0.9], "retrained": "all",
              "retrained_realized_accuracy": 0.7, "serving_estimated_accuracy": 0.6, "serving_realized_accuracy": 0.65}
    errors = chained_errors([RegretRun("micro", 1, {1: 0.7}, {1: {"cam0": record}})])
    assert errors[["kind", "config", "error_points"]].values.tolist() == [["serving", "", pytest.approx(-5.0)],
                                                                          ["config", "all", pytest.approx(20.0)]]


def test_the_variant_is_read_from_the_logged_profiler():
    assert variant_label({"profiler.name": "micro", "profiler.correction": "none"}) == "micro"
    assert variant_label({"profiler.name": "micro", "profiler.correction": "online"}) == "micro_corrected"
    assert variant_label({"profiler.name": "oracle"}) == "oracle"
    assert variant_label({"profiler.name": "micro"}) == "micro"  # logged before the correction existed


def test_the_summary_and_figures_show_every_variant():
    text = regret_markdown("tiny", RUNS, note="a note")
    assert "| micro | " in text and "micro_corrected" in text and "Chained fidelity" in text and "a note" in text
    regret_figure("tiny", RUNS)
    chained_figure("tiny", chained_errors(RUNS[:1]))


def test_without_an_oracle_run_the_summary_says_regret_is_not_measured():
    runs = [RegretRun("micro", 1, {1: 0.7}), RegretRun("micro_corrected", 1, {1: 0.72})]
    text = regret_markdown("job", runs)
    assert "No finished oracle run: regret is not measured." in text and "| micro_corrected | 72.00 |" in text
    regret_figure("job", runs)


def test_the_summary_reports_the_estimations_share_of_the_window():
    runs = [RegretRun("micro", 1, {1: 0.6, 2: 0.5}, profile_share={1: 0.2, 2: 0.1}), RegretRun("oracle", 1, {1: 0.7, 2: 0.7},
                                                                                      profile_share={1: 0.0, 2: 0.0})]
    assert "share of the window's GPU time (mean over windows and seeds): micro 15.0%, oracle 0.0%." in regret_markdown("job", runs)


def test_the_regret_splits_into_estimation_and_drift_with_a_holdout_oracle():
    runs = [RegretRun("micro", 1, {1: 0.60, 2: 0.50}), RegretRun("holdout_oracle", 1, {1: 0.65, 2: 0.55}),
            RegretRun("oracle", 1, {1: 0.75, 2: 0.75})]
    text = regret_markdown("job", runs)
    # micro: 20 points below the oracle on average; 5 of them to estimation, 15 to drift.
    assert "Where the regret comes from" in text and "| micro | +20.00 | +5.00 | +15.00 | +5.00 |" in text
    assert "Where the regret comes from" not in regret_markdown("job", [runs[0], runs[2]])
    # A seed without a holdout oracle run stays out of the split, the regret against the oracle too.
    other_seed = [RegretRun("micro", 2, {1: 0.0, 2: 0.0}), RegretRun("oracle", 2, {1: 0.75, 2: 0.75})]
    assert "| micro | +20.00 | +5.00 | +15.00 | +5.00 |" in regret_markdown("job", runs + other_seed)

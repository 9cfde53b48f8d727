"""Simulator vs local execution: the difference per point over the windows both executors ran."""

import pytest

from ekya.errors import EkyaError
from ekya_studies.sim_vs_local import LoggedRun, agreement_lines, agreement_markdown, agreement_table


def runs():
    return [
        # local runs windows 1..3, the simulator 0..3: compared on 1..3
        LoggedRun("local", "Ekya", 1.0, 3, {1: 0.60, 2: 0.70, 3: 0.80}),
        LoggedRun("simulated", "Ekya", 1.0, 3, {0: 0.10, 1: 0.62, 2: 0.66, 3: 0.79}),
        LoggedRun("simulated", "Uniform (c05, 50%)", 1.0, 3, {0: 0.1, 1: 0.5, 2: 0.5, 3: 0.5}),
        LoggedRun("local", "Uniform (c05, 50%)", 1.0, 3, {1: 0.45, 2: 0.5, 3: 0.55}),
        LoggedRun("simulated", "Fair", 1.0, 3, {0: 0.5, 1: 0.5}),  # no local run
    ]


def test_each_point_is_compared_on_the_windows_both_ran():
    table, unmatched = agreement_table(runs())
    assert list(table["label"]) == ["Ekya", "Uniform (c05, 50%)"]
    ekya = table.iloc[0]
    assert ekya["windows"] == "1-3"
    assert ekya["local"] == pytest.approx(0.70)
    assert ekya["simulated"] == pytest.approx((0.62 + 0.66 + 0.79) / 3)
    assert ekya["difference_points"] == pytest.approx(100 * (0.70 - (0.62 + 0.66 + 0.79) / 3))
    assert ekya["max_window_difference_points"] == pytest.approx(4.0)
    uniform = table.iloc[1]
    assert uniform["difference_points"] == pytest.approx(0.0, abs=1e-9)
    assert uniform["max_window_difference_points"] == pytest.approx(5.0)
    assert unmatched == ["Fair, 1 GPUs, 3 streams: no local run"]


def test_points_differ_by_gpus_and_streams_too():
    table, unmatched = agreement_table([
        LoggedRun("local", "Ekya", 1.0, 3, {1: 0.5}), LoggedRun("simulated", "Ekya", 2.0, 3, {1: 0.5}),
    ])
    assert table.empty and len(unmatched) == 2


def test_no_common_window_is_reported_not_compared():
    table, unmatched = agreement_table([LoggedRun("local", "Ekya", 1, 2, {3: 0.5}), LoggedRun("simulated", "Ekya", 1, 2, {0: 0.5})])
    assert table.empty
    assert unmatched == ["Ekya, 1 GPUs, 2 streams: no window in common (local [3], simulated [0])"]


def test_two_runs_of_one_executor_at_one_point_or_an_unknown_executor_are_refused():
    with pytest.raises(EkyaError, match="two local runs of Ekya with 1 GPUs and 3 streams"):
        agreement_table([LoggedRun("local", "Ekya", 1, 3, {1: 0.5}), LoggedRun("local", "Ekya", 1, 3, {1: 0.6})])
    with pytest.raises(EkyaError, match="executor 'gpu'; valid: local, simulated"):
        agreement_table([LoggedRun("gpu", "Ekya", 1, 3, {1: 0.5})])


def test_the_summary_and_the_headline_line_state_the_differences():
    table, unmatched = agreement_table(runs())
    text = agreement_markdown(table, unmatched)
    assert "| Ekya | 1 | 3 | 1-3 | 70.00 | 69.00 | +1.00 | 4.00 |" in text
    assert "Mean absolute difference: 0.50 accuracy points" in text
    assert "- Fair, 1 GPUs, 3 streams: no local run" in text
    (line,) = agreement_lines(table, "3 streams, windows 1-3")
    assert line == ("Simulator vs real execution (3 streams, windows 1-3), local - simulated mean accuracy: "
                    "Ekya +1.00, Uniform (c05, 50%) +0.00 accuracy points.")

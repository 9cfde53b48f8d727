"""The MPS throughput table: measured one process per share, written where executor.scaling=measured reads it."""

import pytest

from ekya.execution.gpu import measure
from ekya.execution.gpu.jobs import Workers
from ekya.execution.gpu.measure import MeasuredCurve, measure_curve, measure_tables
from ekya.profiling.cost_model import ThroughputTable
from ekya.profiling.throughput import gpu_table_path


def test_tables_are_written_in_the_trace_format(tmp_path, monkeypatch):
    seen = []

    def fake(model, mode, workers, **options):
        seen.append((model, mode, workers.daemon))
        return MeasuredCurve(mode, (0.5, 1.0), (90.0, 100.0) if mode == "train" else (60.0, 55.0))

    monkeypatch.setattr(measure, "measure_curve", fake)
    curves = measure_tables("resnet18", tmp_path, "NVIDIA H200", isolation="none")
    assert [s[:2] for s in seen] == [("resnet18", "train"), ("resnet18", "inference")] and seen[0][2] is None
    train = ThroughputTable.load_csv(gpu_table_path(tmp_path, "resnet18", "NVIDIA H200"))
    assert train.throughput(0.5) == pytest.approx(0.9)
    inference = ThroughputTable.load_csv(gpu_table_path(tmp_path, "resnet18", "NVIDIA H200", "inference"))
    assert inference.throughput(1.0) == pytest.approx(1.0) and inference.throughput(0.5) == pytest.approx(1.0)  # kept monotone
    assert curves["train"].samples_per_second == (90.0, 100.0)


def test_the_command_needs_cuda(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert measure.main(["--model", "resnet18"]) == 2
    assert capsys.readouterr().err.strip() == "error: measuring the MPS throughput table needs CUDA (torch.cuda.is_available() is False)"


@pytest.mark.slow
def test_each_share_is_measured_in_its_own_process_on_the_cpu(tmp_path):
    curve = measure_curve("shufflenet_v2_x0_5", "train", Workers(tmp_path), shares=(0.5, 1.0), batch_size=8, resolution=16,
                          seconds=0.5, device="cpu")
    assert curve.shares == (0.5, 1.0) and all(rate > 0 for rate in curve.samples_per_second)
    assert curve.table.throughput(1.0) == pytest.approx(1.0)


def test_the_csv_written_without_scipy_is_the_table_format(tmp_path):
    curve = MeasuredCurve("train", (0.1, 0.5, 1.0), (30.0, 80.0, 100.0))
    path = tmp_path / "t.csv"
    path.write_text(curve.csv_text())
    assert ThroughputTable.load_csv(path).throughput(0.5) == pytest.approx(0.8) == curve.table.throughput(0.5)

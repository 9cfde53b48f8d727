import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.profiling import throughput
from ekya.profiling.cost_model import ThroughputTable
from ekya.profiling.throughput import measure_cpu_throughput_table, scaling_table, stored_throughput_table


def test_cpu_table_has_one_point_per_thread_count_and_is_normalised_and_monotone():
    table = measure_cpu_throughput_table("shufflenet_v2_x0_5", cores=2, steps=1, batch_size=4)
    np.testing.assert_allclose(table.shares, [0.5, 1.0])
    assert table.throughput(1.0) == pytest.approx(1.0)
    assert 0 < table.throughput(0.5) <= 1.0


def test_a_drop_with_more_threads_is_flattened(monkeypatch):
    rates = {1: 100.0, 2: 80.0, 3: 150.0}  # samples/s: an oversubscribed machine slows down at 2 threads
    monkeypatch.setattr(throughput, "measure_training_throughput", lambda model, threads, **options: rates[threads])
    table = measure_cpu_throughput_table("resnet18", cores=3)
    np.testing.assert_allclose(table.throughputs, [100 / 150, 100 / 150, 1.0])


def test_table_is_measured_once_and_stored(tmp_path, monkeypatch):
    calls = []

    def fake(model, cores=None, progress=False, **options):
        calls.append(model)
        return ThroughputTable([0.5, 1.0], [0.7, 1.0])

    monkeypatch.setattr(throughput, "measure_cpu_throughput_table", fake)
    first = stored_throughput_table(tmp_path, "resnet18")
    second = stored_throughput_table(tmp_path, "resnet18")
    assert calls == ["resnet18"] and second.throughput(0.5) == pytest.approx(0.7) == first.throughput(0.5)
    assert len(list(tmp_path.glob("throughput-resnet18-cpu*.csv"))) == 1
    with pytest.raises(EkyaError, match="MPS"):
        stored_throughput_table(tmp_path, "resnet18", device="cuda")


def test_scaling_option(tmp_path):
    assert scaling_table("linear", tmp_path, "resnet18").throughput(0.3) == pytest.approx(0.3)
    path = tmp_path / "table.csv"
    ThroughputTable([0.5, 1.0], [0.8, 1.0]).save_csv(path)
    assert scaling_table(str(path), tmp_path, "resnet18").throughput(0.5) == pytest.approx(0.8)
    assert scaling_table("measured", tmp_path, "resnet18", measured_path=path).throughput(0.5) == pytest.approx(0.8)
    with pytest.raises(EkyaError, match="does not exist.*linear"):
        scaling_table("measured", tmp_path, "resnet18", measured_path=tmp_path / "trace" / "throughput.csv")
    with pytest.raises(EkyaError, match="'fast'.*linear, measured"):
        scaling_table("fast", tmp_path, "resnet18")


def test_a_gpu_table_is_read_where_the_mps_measurement_writes_it(tmp_path, monkeypatch):
    import torch

    from ekya.profiling.cost_model import ThroughputTable
    from ekya.profiling.throughput import gpu_table_path

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    path = gpu_table_path(tmp_path, "resnet18", "NVIDIA H200")
    assert path.name == "throughput-resnet18-nvidia-h200-mps.csv"
    assert gpu_table_path(tmp_path, "resnet18", "NVIDIA H200", "inference").name == "throughput-resnet18-nvidia-h200-inference-mps.csv"
    with pytest.raises(EkyaError, match="no MPS throughput table of resnet18 on NVIDIA H200 .*python -m ekya.execution.gpu.measure"):
        stored_throughput_table(tmp_path, "resnet18", device="cuda")
    ThroughputTable.normalised([0.5, 1.0], [80.0, 100.0]).save_csv(path)
    assert stored_throughput_table(tmp_path, "resnet18", device="cuda").throughput(0.5) == pytest.approx(0.8)

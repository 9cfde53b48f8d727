"""The trace format: loading, look-ups, and one clear message per kind of bad input."""

import shutil
from pathlib import Path

import pytest

from ekya.errors import EkyaError
from ekya.profiling.trace import load_trace, write_trace

PAPER_EXAMPLE = Path(__file__).resolve().parents[2] / "ekya" / "data" / "traces" / "paper_example"


def small_trace(root, **meta):
    retrain = [
        {"stream": "a", "window": -1, "config": "base", "gpu_seconds": 0, "accuracy": 0.6, "eval_window": 0},
        {"stream": "a", "window": -1, "config": "base", "gpu_seconds": 0, "accuracy": 0.5, "eval_window": 1},
        {"stream": "a", "window": 0, "config": "x", "gpu_seconds": 30, "accuracy": 0.8, "eval_window": 0},
        {"stream": "a", "window": 0, "config": "x", "gpu_seconds": 30, "accuracy": 0.7, "eval_window": 2},
        {"stream": "a", "window": 1, "config": "x", "gpu_seconds": 20, "accuracy": 0.9, "eval_window": 1},
        {"stream": "a", "window": 2, "config": "x", "gpu_seconds": 20, "accuracy": 0.9, "eval_window": 2},
    ]
    inference = [{"stream": "*", "config": "full", "demand_gpu": 0.5, "accuracy_factor": 1.0},
                 {"stream": "a", "config": "half", "demand_gpu": 0.25, "accuracy_factor": 0.9}]
    return write_trace(root, 100.0, ["a"], retrain, inference, **meta)


def test_paper_example_loads():
    trace = load_trace(PAPER_EXAMPLE)
    assert trace.streams == ["A", "B"] and trace.window_seconds == 120 and trace.gpus == 3
    assert trace.num_windows == 2 and trace.uniform_configs == {"high": "Cfg1", "low": "Cfg2"}
    profile = trace.retrain_profile("A", 1)
    assert profile.names == ("Cfg1", "Cfg2")
    assert list(profile.gpu_seconds) == [90, 40] and list(profile.accuracy) == [0.95, 0.90]
    assert trace.inference_table("B") == {"full": (1.0, 1.0)}


def test_models_keep_their_last_known_accuracy(tmp_path):
    trace = load_trace(small_trace(tmp_path, gpus=2))
    assert trace.model_accuracy("a", -1, "base", 0) == 0.6
    assert trace.model_accuracy("a", -1, "base", 2) == 0.5  # no row for window 2: last known
    assert trace.model_accuracy("a", 0, "x", 1) == 0.8
    assert trace.model_accuracy("a", 0, "x", 2) == 0.7
    assert trace.inference_table("a") == {"full": (0.5, 1.0), "half": (0.25, 0.9)}
    assert trace.gpus == 2 and trace.delta is None


def edit(root, name, old, new):
    path = Path(root) / name
    path.write_text(path.read_text().replace(old, new))


@pytest.mark.parametrize(
    "name, old, new, message",
    [
        ("retrain.csv", "gpu_seconds", "cost", r"retrain.csv: missing column\(s\) gpu_seconds"),
        ("retrain.csv", "a,0,x,30,0.8", "a,0,x,-30,0.8", r"retrain.csv: row 4, column gpu_seconds: -30.0 is outside \[0, inf\)"),
        ("retrain.csv", "a,1,x,20,0.9", "a,1,x,20,1.9", r"retrain.csv: row 6, column accuracy: 1.9 is outside \[0, 1\]"),
        ("retrain.csv", "a,1,x,20,0.9", "b,1,x,20,0.9", r"retrain.csv: row 6, column stream: 'b' is not declared in trace.yaml"),
        ("retrain.csv", "a,1,x,20,0.9", "a,1,x,twenty,0.9", r"row 6, column gpu_seconds: 'twenty' is not a number"),
        ("inference.csv", "0.25,0.9", "0,0.9", r"inference.csv: row 3, column demand_gpu: 0.0 is outside"),
        ("inference.csv", "stream,config", "camera,config", r"inference.csv: missing column\(s\) stream"),
        ("trace.yaml", "window_seconds: 100.0", "window_seconds: -5", "window_seconds must be a number > 0, got -5"),
    ],
)
def test_bad_traces_name_file_row_and_column(tmp_path, name, old, new, message):
    root = small_trace(tmp_path)
    edit(root, name, old, new)
    with pytest.raises(EkyaError, match=message):
        load_trace(root)


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(EkyaError, match="does not exist"):
        load_trace(tmp_path / "nowhere")
    root = small_trace(tmp_path / "t")
    (root / "inference.csv").unlink()
    with pytest.raises(EkyaError, match="inference.csv: missing"):
        load_trace(root)


def test_stream_without_base_model(tmp_path):
    root = tmp_path / "t"
    shutil.copytree(PAPER_EXAMPLE, root)
    edit(root, "retrain.csv", "B,-1,base,0,0.50\n", "")
    with pytest.raises(EkyaError, match="stream\\(s\\) B have no base model row"):
        load_trace(root)

"""The reference cost table: the shipped one covers the project's models and resolutions; tables load strictly."""

from __future__ import annotations

import pytest

from ekya.errors import EkyaError
from ekya.models.factory import build_model, num_layer_groups
from ekya.models.names import MODEL_NAMES
from ekya.profiling.reference_costs import RESOLUTIONS, ReferenceCosts, main, measure_rows, table_text


def test_the_shipped_table_covers_every_model_resolution_and_layer_count_and_names_its_origin():
    table = ReferenceCosts.shipped("cpu")
    assert any(line.startswith("device: cpu") for line in table.header)
    assert any(line.startswith("command: python -m ekya.profiling.reference_costs") for line in table.header)
    assert any(line.startswith("date: ") for line in table.header)
    for model in MODEL_NAMES:
        assert table.resolutions(model) == list(RESOLUTIONS)
        assert table.layer_counts(model) == list(range(1, num_layer_groups(build_model(model)) + 1))
        for resolution in RESOLUTIONS:
            assert table.inference_seconds(model, resolution) > 0
            head, every = table.training_rates(model, resolution, 1), table.training_rates(model, resolution, "all")
            assert head.frozen > 0 and every.frozen == 0  # nothing is frozen when every layer trains
            assert every.train > head.train > 0  # training more layers costs more per crop
        # a crop of more pixels costs more to run
        seconds = [table.inference_seconds(model, resolution) for resolution in RESOLUTIONS]
        assert seconds[0] < seconds[-1]


def test_train_layers_beyond_the_model_train_everything():
    table = ReferenceCosts.shipped("cpu")
    assert table.training_rates("resnet18", 32, 99) == table.training_rates("resnet18", 32, "all")


def test_a_missing_resolution_names_the_key_and_the_valid_ones():
    table = ReferenceCosts.shipped("cpu")
    with pytest.raises(EkyaError, match=r"inference config c1: resolution=20: .* no costs of resnet18 at 20 px; valid resolutions: 16, 24, 32, 48, 64"):
        table.inference_seconds("resnet18", 20, "inference config c1: resolution")
    with pytest.raises(EkyaError, match="no costs of model 'vgg'"):
        table.training_rates("vgg", 32, 1)
    with pytest.raises(EkyaError, match="cost=reference: no reference cost table ships for device .cuda."):
        ReferenceCosts.shipped("cuda")


def test_bad_tables_are_refused_with_their_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("# made by hand\nkind,model,resolution,train_layers,seconds_per_crop\ninference,resnet18,32,,abc\n")
    with pytest.raises(EkyaError, match=r"t.csv, line 3: expected"):
        ReferenceCosts.load(path)
    path.write_text("kind,model,resolution,train_layers,seconds_per_crop\nfrozen,resnet18,32,1,0.1\n")
    with pytest.raises(EkyaError, match="train_layers=1 has no train, validation row"):
        ReferenceCosts.load(path)
    path.write_text("model,seconds\n")
    with pytest.raises(EkyaError, match="must be the header"):
        ReferenceCosts.load(path)
    with pytest.raises(EkyaError, match="does not exist"):
        ReferenceCosts.load(tmp_path / "none.csv")


def test_measured_rows_round_trip_through_a_table(tmp_path):
    rows = measure_rows("shufflenet_v2_x0_5", [16], crops=32, repeats=1, progress=False)
    path = tmp_path / "own.csv"
    path.write_text(table_text(rows, ["device: test"]))
    table = ReferenceCosts.load(path)
    assert table.header == ("device: test",)
    assert table.resolutions("shufflenet_v2_x0_5") == [16]
    assert table.layer_counts("shufflenet_v2_x0_5") == list(range(1, 7))


def test_the_command_refuses_bad_resolutions(capsys, tmp_path):
    assert main(["--output", str(tmp_path / "x.csv"), "--resolutions", "0"]) == 2
    assert "--resolutions must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()

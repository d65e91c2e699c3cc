import pytest

from epic.shared.geometry import CONTRACT, Geometry, GeometryError, GeometryWarning


def test_contract_matches_mission():
    g = CONTRACT
    assert (g.nz, g.nx, g.spacing_m) == (70, 70, 10.0)
    assert g.source_columns == (0, 17, 34, 52, 69)
    assert g.receiver_columns == tuple(range(70))
    assert g.source_row == g.receiver_row == 1
    assert (g.nt, g.dt_s, g.peak_freq_hz, g.peak_time_s) == (1000, 0.001, 15.0, 0.1)
    assert g.data_shape == (5, 1000, 70) and g.model_shape == (1, 70, 70)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"nx": 1}, "nx=1"),
        ({"dt_s": 0.0}, "dt_s=0.0"),
        ({"source_columns": (0, 70)}, "source_columns"),
        ({"receiver_columns": (3, 3)}, "receiver_columns"),
        ({"source_row": 70}, "source_row=70"),
        ({"accuracy": 3}, "accuracy=3"),
        ({"v_min": 5000.0}, "v_max"),
        ({"peak_time_s": 2.0}, "peak_time_s=2.0"),
        ({"pml_width": 0}, "pml_width=0"),
    ],
)
def test_bad_parameters_raise_naming_the_value(change, names):
    with pytest.raises(GeometryError, match=names):
        Geometry(**change)


def test_coarse_grid_warns_of_dispersion():
    with pytest.warns(GeometryWarning, match="cells per shortest wavelength"):
        Geometry(spacing_m=40.0)


def test_round_trips_through_a_dict():
    assert Geometry.from_dict(CONTRACT.to_dict()) == CONTRACT

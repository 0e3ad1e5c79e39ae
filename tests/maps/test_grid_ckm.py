"""Grid geometry by hand, the CKM contract (make/validate), its zarr round trip, and uniform sub-sampling."""

import json

import numpy as np
import pytest
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB, grid_of, make_ckm, read_ckm, validate_ckm, write_ckm
from ckmsim.maps.degrade import uniform_subsample
from ckmsim.maps.grid import Grid

#: 3 columns x 2 rows of 2 m cells centred on (10, -4) m: x edges 7..13 m, y edges -6..-2 m.
GRID_3X2 = Grid(center_x_m=10.0, center_y_m=-4.0, num_x=3, num_y=2, cell_size_m=2.0, height_m=1.5)
FLOAT_LAYERS = ("gain_db", "path_gain_db", "aoa_az_deg", "aoa_el_deg", "toa_s")


def _random_ckm(rng, grid: Grid, building: np.ndarray, num_paths: int = 2, attrs: dict | None = None):
    """A CKM with every layer of the contract; NaN gain on building cells, one missing second path."""
    shape = grid.shape
    gain_db = np.where(building, np.nan, rng.uniform(-140.0, -60.0, shape))
    path_gain_db = rng.uniform(-150.0, -60.0, (num_paths,) + shape)
    aoa_az_deg = rng.uniform(-180.0, 180.0, (num_paths,) + shape)
    aoa_el_deg = rng.uniform(-90.0, 90.0, (num_paths,) + shape)
    toa_s = rng.uniform(1e-7, 1e-6, (num_paths,) + shape)
    # The second path of the first non-building cell does not exist
    row, col = np.argwhere(~building)[0]
    path_gain_db[-1, row, col] = GAIN_FLOOR_DB
    for layer in (aoa_az_deg, aoa_el_deg, toa_s):
        layer[-1, row, col] = np.nan
    los = rng.uniform(size=shape) < 0.5
    return make_ckm(grid, {"gain_db": gain_db, "building": building, "los": los & ~building,
                           "path_gain_db": path_gain_db, "aoa_az_deg": aoa_az_deg, "aoa_el_deg": aoa_el_deg,
                           "toa_s": toa_s}, attrs)


# ------------------------------------------------------------------------------------------------ Grid
def test_grid_cell_centres_bounds_shape_by_hand():
    grid = GRID_3X2
    assert grid.shape == (2, 3)
    assert grid.size_m == (6.0, 4.0)
    np.testing.assert_allclose(grid.x_m, [8.0, 10.0, 12.0])
    np.testing.assert_allclose(grid.y_m, [-5.0, -3.0])
    assert grid.bounds_m == (7.0, 13.0, -6.0, -2.0)
    centers = grid.cell_centers_m()
    assert centers.shape == (2, 3, 3)
    # Row index follows y, column index follows x (Sionna's cell_centers order)
    np.testing.assert_allclose(centers[0, 0], [8.0, -5.0, 1.5])
    np.testing.assert_allclose(centers[1, 2], [12.0, -3.0, 1.5])
    np.testing.assert_allclose(centers[..., 2], 1.5)


def test_grid_downsampled_indices():
    rows, cols = GRID_3X2.downsampled_indices(2)
    np.testing.assert_array_equal(rows, [0])
    np.testing.assert_array_equal(cols, [0, 2])
    rows, cols = GRID_3X2.downsampled_indices(1)
    np.testing.assert_array_equal(rows, [0, 1])
    np.testing.assert_array_equal(cols, [0, 1, 2])
    for factor in (0, -2, 1.5):
        with pytest.raises(CkmsimError, match="factor"):
            GRID_3X2.downsampled_indices(factor)


@pytest.mark.parametrize("field, value", [("num_x", 0), ("num_x", -3), ("num_x", 2.5), ("num_y", 0),
                                          ("num_y", 1.5), ("cell_size_m", 0.0), ("cell_size_m", -2.0),
                                          ("cell_size_m", float("nan"))])
def test_grid_rejects_bad_fields_by_name(field, value):
    values = {**GRID_3X2.to_dict(), field: value}
    with pytest.raises(CkmsimError, match=f"Grid.{field}") as info:
        Grid(**values)
    assert f"{field}=" in str(info.value)


def test_grid_dict_round_trip():
    values = GRID_3X2.to_dict()
    assert values == {"center_x_m": 10.0, "center_y_m": -4.0, "num_x": 3, "num_y": 2, "cell_size_m": 2.0,
                      "height_m": 1.5}
    assert Grid.from_dict(values) == GRID_3X2
    assert Grid.from_dict(json.loads(json.dumps(values))) == GRID_3X2


def test_grid_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(CkmsimError, match="cell_size"):
        Grid.from_dict({**GRID_3X2.to_dict(), "cell_size": 2.0})
    incomplete = GRID_3X2.to_dict()
    del incomplete["cell_size_m"]
    with pytest.raises(CkmsimError, match="cell_size_m"):
        Grid.from_dict(incomplete)
    with pytest.raises(CkmsimError, match="num_y"):
        Grid.from_dict({**GRID_3X2.to_dict(), "num_y": 0})


# ------------------------------------------------------------------------------------------------ make_ckm
def test_make_ckm_dims_dtypes_coords_attrs(rng):
    building = np.array([[False, True, False], [False, False, False]])
    ckm = _random_ckm(rng, GRID_3X2, building, attrs={"scene": "toy"})
    assert ckm["gain_db"].dims == ("y", "x") and ckm["gain_db"].dtype == np.float32
    assert ckm["path_gain_db"].dims == ("path", "y", "x") and ckm["path_gain_db"].dtype == np.float32
    assert ckm["building"].dtype == bool and ckm["los"].dtype == bool
    np.testing.assert_allclose(ckm["x"].values, GRID_3X2.x_m)
    np.testing.assert_allclose(ckm["y"].values, GRID_3X2.y_m)
    np.testing.assert_array_equal(ckm["path"].values, [0, 1])
    assert ckm["x"].attrs["units"] == "m"
    assert ckm.attrs["scene"] == "toy"
    assert ckm.attrs["gain_floor_db"] == GAIN_FLOOR_DB
    assert grid_of(ckm) == GRID_3X2


def test_make_ckm_rejects_wrong_shape_by_name():
    building = np.zeros((2, 3), dtype=bool)
    with pytest.raises(CkmsimError, match="'gain_db' has shape \\(3, 2\\)") as info:
        make_ckm(GRID_3X2, {"gain_db": np.zeros((3, 2)), "building": building})
    assert "(2, 3)" in str(info.value)
    with pytest.raises(CkmsimError, match="'aoa_az_deg'"):
        make_ckm(GRID_3X2, {"gain_db": np.zeros((2, 3)), "building": building, "aoa_az_deg": np.zeros((2, 3, 2))})


def test_make_ckm_rejects_unknown_variable_by_name():
    with pytest.raises(CkmsimError, match="'gain_dbm'"):
        make_ckm(GRID_3X2, {"gain_dbm": np.zeros((2, 3)), "building": np.zeros((2, 3), dtype=bool)})


# ------------------------------------------------------------------------------------------------ validate_ckm
def test_validate_ckm_accepts_nan_gain_inside_buildings_only(rng):
    building = np.array([[False, True, False], [False, False, True]])
    ckm = _random_ckm(rng, GRID_3X2, building)
    validate_ckm(ckm)
    broken = ckm.copy(deep=True)
    broken["gain_db"].values[0, 2] = np.nan
    broken["gain_db"].values[1, 0] = np.inf
    with pytest.raises(CkmsimError, match=r"2 non-finite value\(s\) outside buildings, first at \(y=0, x=2\)"):
        validate_ckm(broken)
    with pytest.raises(CkmsimError, match="non-finite"):
        make_ckm(GRID_3X2, {"gain_db": broken["gain_db"].values, "building": building})


@pytest.mark.parametrize("name, value, ok", [("aoa_az_deg", 181.0, False), ("aoa_az_deg", -180.5, False),
                                             ("aoa_az_deg", 180.0, True), ("aoa_az_deg", -180.0, True),
                                             ("aoa_el_deg", 90.5, False), ("aoa_el_deg", -91.0, False),
                                             ("aoa_el_deg", 90.0, True)])
def test_validate_ckm_angle_ranges(rng, name, value, ok):
    ckm = _random_ckm(rng, GRID_3X2, np.zeros((2, 3), dtype=bool))
    ckm[name].values[1, 1, 2] = value
    if ok:
        validate_ckm(ckm)
    else:
        with pytest.raises(CkmsimError, match=name):
            validate_ckm(ckm)


def test_validate_ckm_names_missing_variable_and_wrong_dims(rng):
    ckm = _random_ckm(rng, GRID_3X2, np.zeros((2, 3), dtype=bool))
    with pytest.raises(CkmsimError, match="'building'"):
        validate_ckm(ckm.drop_vars("building"))
    transposed = ckm.copy()
    transposed["gain_db"] = ckm["gain_db"].transpose("x", "y")
    with pytest.raises(CkmsimError, match="'gain_db' has dims"):
        validate_ckm(transposed)


# ------------------------------------------------------------------------------------------------ zarr
def test_zarr_round_trip_preserves_values_dtypes_dims_coords_attrs(rng, tmp_path):
    building = np.array([[False, True, False], [True, False, False]])
    attrs = {"scene": "toy", "frequency_hz": 28e9, "bs_position_m": [1.0, 2.0, 25.0],
             "ray_tracing": {"max_depth": 3, "diffraction": True, "nested": {"seeds": [1, 2], "name": "rm"}}}
    ckm = _random_ckm(rng, GRID_3X2, building, attrs=attrs)
    assert write_ckm(ckm, tmp_path / "ckm.zarr") == tmp_path / "ckm.zarr"
    back = read_ckm(tmp_path / "ckm.zarr")

    xr.testing.assert_identical(back, ckm)
    assert set(back.data_vars) == set(ckm.data_vars)
    for name, var in ckm.variables.items():
        assert back[name].dims == var.dims, name
        assert back[name].dtype == var.dtype, name
        # Bit-exact, NaN at the same cells
        np.testing.assert_array_equal(back[name].values, var.values, err_msg=name)
    assert np.isnan(back["gain_db"].values[building]).all()
    assert np.isnan(back["aoa_az_deg"].values).sum() == 1
    assert back["x"].attrs == {"units": "m"} and back["y"].attrs == {"units": "m"}
    assert back.attrs == ckm.attrs
    assert back.attrs["ray_tracing"]["nested"] == {"seeds": [1, 2], "name": "rm"}
    assert grid_of(back) == GRID_3X2


def test_write_ckm_overwrites(rng, tmp_path):
    building = np.zeros((2, 3), dtype=bool)
    write_ckm(_random_ckm(rng, GRID_3X2, building), tmp_path / "ckm.zarr")
    second = _random_ckm(rng, GRID_3X2, building)
    write_ckm(second, tmp_path / "ckm.zarr")
    xr.testing.assert_identical(read_ckm(tmp_path / "ckm.zarr"), second)


def test_read_ckm_missing_path(tmp_path):
    with pytest.raises(CkmsimError, match="does not exist"):
        read_ckm(tmp_path / "nowhere.zarr")


def test_read_ckm_folder_that_is_not_a_store(tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "notes.txt").write_text("not zarr")
    with pytest.raises(CkmsimError, match="not a readable CKM zarr store"):
        read_ckm(folder)


def test_write_ckm_unwritable_path(rng, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(CkmsimError, match="Cannot write CKM store"):
        write_ckm(_random_ckm(rng, GRID_3X2, np.zeros((2, 3), dtype=bool)), blocker / "ckm.zarr")


# ------------------------------------------------------------------------------------------------ uniform_subsample
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_uniform_subsample_keeps_lattice_non_building_cells(rng, factor):
    # 7 x 5 is not a multiple of 2 or 3: the lattice starts at cell (0, 0) and keeps the last partial row/column
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=5, num_y=7, cell_size_m=1.0)
    building = np.zeros(grid.shape, dtype=bool)
    building[0, 0] = building[3, 3] = building[2, 1] = building[6, 4] = True
    truth = _random_ckm(rng, grid, building)
    original = truth.copy(deep=True)

    observation = uniform_subsample(truth, factor)

    lattice = np.zeros(grid.shape, dtype=bool)
    lattice[::factor, ::factor] = True
    expected = lattice & ~building
    np.testing.assert_array_equal(observation.observed, expected)
    np.testing.assert_array_equal(observation.building, building)
    assert observation.task == f"sr_x{factor}" and observation.factor == factor
    assert observation.grid == grid
    assert observation.attrs == truth.attrs
    for name in FLOAT_LAYERS:
        values = observation.values[name]
        assert values.dims == truth[name].dims, name
        kept = np.broadcast_to(expected, values.shape)
        np.testing.assert_array_equal(values.values[kept], truth[name].values[kept], err_msg=name)
        assert np.isnan(values.values[~kept]).all(), name
    xr.testing.assert_identical(truth, original)


def test_uniform_subsample_never_exposes_boolean_layers(rng):
    building = np.zeros(GRID_3X2.shape, dtype=bool)
    building[1, 1] = True
    observation = uniform_subsample(_random_ckm(rng, GRID_3X2, building), 2)
    assert "los" not in observation.values and "building" not in observation.values
    assert all(var.dtype != bool for var in observation.values.data_vars.values())
    assert set(observation.values.data_vars) == set(FLOAT_LAYERS)


def test_uniform_subsample_rejects_bad_factor(rng):
    truth = _random_ckm(rng, GRID_3X2, np.zeros(GRID_3X2.shape, dtype=bool))
    with pytest.raises(CkmsimError, match="factor"):
        uniform_subsample(truth, 0)

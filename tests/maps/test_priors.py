"""Priors and cross-AP encodings on hand-made 8 x 8 maps, checked against values computed by hand."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import gain_db_to_pixel
from ckmsim.maps.priors import (
    ap_feature_map,
    ap_location_map,
    bs_gaussian_map,
    building_map,
    cell_of_position,
    cross_ap_input,
    cross_ap_input_from_ckms,
    los_map,
    preconvolved_location_map,
)

#: 8 x 8 cells of 2 m centred on (8, 8) m: x and y edges 0, 2, ..., 16 m; cell (row, col) spans
#: x in [2 col, 2 col + 2), y in [2 row, 2 row + 2).
GRID_8X8 = Grid(center_x_m=8.0, center_y_m=8.0, num_x=8, num_y=8, cell_size_m=2.0, height_m=1.5)


def _ckm(bs_position_m=(5.0, 11.0, 10.0), gain_db=None):
    """An 8 x 8 CKM: buildings in rows 0-1 / cols 6-7, LoS in the left half, BS at (5, 11) m = cell (5, 2)."""
    building = np.zeros((8, 8), dtype=bool)
    building[0:2, 6:8] = True
    los = np.zeros((8, 8), dtype=bool)
    los[:, :4] = True
    los[0, 6] = True  # a LoS flag on a building cell must not survive los_map
    if gain_db is None:
        gain_db = np.full((8, 8), -120.0)
    gain_db = np.where(building, np.nan, gain_db)
    return make_ckm(GRID_8X8, {"gain_db": gain_db, "building": building, "los": los},
                    {"bs_position_m": list(bs_position_m)})


# ------------------------------------------------------------------------------------------------ cells
def test_cell_of_position_by_hand():
    assert cell_of_position(GRID_8X8, (5.0, 11.0)) == (5, 2)
    assert cell_of_position(GRID_8X8, (0.0, 0.0, 3.0)) == (0, 0)
    assert cell_of_position(GRID_8X8, (2.0, 3.999)) == (1, 1)
    # The grid's upper outer edge belongs to the last cell
    assert cell_of_position(GRID_8X8, (16.0, 16.0)) == (7, 7)
    with pytest.raises(CkmsimError, match="outside the grid"):
        cell_of_position(GRID_8X8, (16.1, 3.0))


# ------------------------------------------------------------------------------------------------ E-SRResNet
def test_building_map_is_zero_on_buildings_one_elsewhere():
    ckm = _ckm()
    expected = np.ones((8, 8), dtype=np.float32)
    expected[0:2, 6:8] = 0.0
    for source in (ckm, ckm["building"].values):
        result = building_map(source)
        assert result.dtype == np.float32
        np.testing.assert_array_equal(result, expected)


def test_los_map_drops_building_cells():
    result = los_map(_ckm())
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[:, :4] = 1.0
    np.testing.assert_array_equal(result, expected)


def test_bs_gaussian_peak_values_and_sum_normalisation():
    gaussian = bs_gaussian_map(_ckm())  # BS cell (5, 2), sigma^2 = 5
    assert gaussian.dtype == np.float32 and gaussian.shape == (8, 8)
    assert gaussian[5, 2] == 1.0
    assert np.unravel_index(np.argmax(gaussian), gaussian.shape) == (5, 2)
    # exp(-d^2 / (2 sigma^2)) = exp(-d^2 / 10)
    np.testing.assert_allclose(gaussian[5, 3], np.exp(-0.1), rtol=1e-6)
    np.testing.assert_allclose(gaussian[4, 1], np.exp(-0.2), rtol=1e-6)
    np.testing.assert_allclose(gaussian[7, 2], np.exp(-0.4), rtol=1e-6)
    np.testing.assert_allclose(gaussian[0, 7], np.exp(-5.0), rtol=1e-6)
    summed = bs_gaussian_map((8, 8), bs_cell=(5, 2), normalization="sum")
    np.testing.assert_allclose(summed.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(summed / summed[5, 2], gaussian, rtol=1e-6)
    wide = bs_gaussian_map((8, 8), bs_cell=(0, 0), variance_cells2=0.5)
    np.testing.assert_allclose(wide[0, 1], np.exp(-1.0), rtol=1e-6)


def test_bs_gaussian_rejects_bad_input():
    with pytest.raises(CkmsimError, match="bs_cell is required"):
        bs_gaussian_map((8, 8))
    with pytest.raises(CkmsimError, match="outside the 8 x 8 map"):
        bs_gaussian_map((8, 8), bs_cell=(8, 0))
    with pytest.raises(CkmsimError, match="variance_cells2"):
        bs_gaussian_map((8, 8), bs_cell=(1, 1), variance_cells2=0.0)
    ckm = _ckm()
    ckm.attrs.pop("bs_position_m")
    with pytest.raises(CkmsimError, match="bs_position_m"):
        bs_gaussian_map(ckm)


# ------------------------------------------------------------------------------------------------ cross-AP
def test_ap_location_map_is_one_hot_at_the_ap_cell():
    one_hot = ap_location_map(_ckm())
    assert one_hot.dtype == np.float32 and one_hot.sum() == 1.0 and one_hot[5, 2] == 1.0
    assert ap_location_map((8, 8), ap_cell=(0, 7))[0, 7] == 1.0
    with pytest.raises(CkmsimError, match="ap_cell"):
        ap_location_map((8, 8), ap_cell=(1.5, 2))


@pytest.mark.parametrize("cell, block", [
    ((0, 0), (slice(0, 2), slice(0, 2))),   # corner: 2 x 2
    ((0, 4), (slice(0, 2), slice(3, 6))),   # top edge: 2 x 3
    ((4, 7), (slice(3, 6), slice(6, 8))),   # right edge: 3 x 2
    ((7, 7), (slice(6, 8), slice(6, 8))),   # corner: 2 x 2
    ((4, 4), (slice(3, 6), slice(3, 6))),   # interior: 3 x 3
])
def test_preconvolution_sets_the_clipped_3x3_block_to_one(cell, block):
    result = preconvolved_location_map(ap_location_map((8, 8), ap_cell=cell))
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[block] = 1.0
    np.testing.assert_array_equal(result, expected)


def test_preconvolution_adds_overlapping_blocks():
    two_aps = ap_location_map((8, 8), ap_cell=(3, 3)) + ap_location_map((8, 8), ap_cell=(3, 5))
    result = preconvolved_location_map(two_aps)
    # Column 4 lies in both 3 x 3 blocks
    np.testing.assert_array_equal(result[2:5, 4], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(result[3, 1:8], [0.0, 1.0, 1.0, 2.0, 1.0, 1.0, 0.0])
    assert result.sum() == 18.0


def test_feature_map_eq_4_by_hand():
    gain = np.full((8, 8), 0.4)
    gain[2, 3] = 0.9
    feature = ap_feature_map(gain, (2, 3), weight=0.25)
    # 0.75 * 0.9 + 0.25 * 1 at the AP, 0.75 * 0.4 elsewhere
    assert feature.dtype == np.float32
    np.testing.assert_allclose(feature[2, 3], 0.925, rtol=1e-6)
    np.testing.assert_allclose(feature[0, 0], 0.3, rtol=1e-6)
    with pytest.raises(CkmsimError, match="weight"):
        ap_feature_map(gain, (2, 3), weight=1.5)
    with pytest.raises(CkmsimError, match="NaN"):
        ap_feature_map(np.where(gain > 0.5, np.nan, gain), (2, 3), weight=0.5)


def test_cross_ap_input_stacks_target_then_other_aps(rng):
    gains = rng.uniform(0.0, 1.0, size=(2, 8, 8))
    cells = np.array([[1, 1], [6, 2]])
    inputs = cross_ap_input(gains, cells, target_cell=(0, 7), weight=0.5)
    assert inputs.shape == (8, 8, 3) and inputs.dtype == np.float32
    target = np.zeros((8, 8))
    target[0:2, 6:8] = 1.0
    np.testing.assert_array_equal(inputs[..., 0], target)
    for n in range(2):
        np.testing.assert_allclose(inputs[..., n + 1], ap_feature_map(gains[n], cells[n], 0.5))
    np.testing.assert_allclose(inputs[6, 2, 2], 0.5 * gains[1, 6, 2] + 0.5, rtol=1e-6)
    with pytest.raises(CkmsimError, match="ap_cells"):
        cross_ap_input(gains, cells[:1], target_cell=(0, 7), weight=0.5)


def test_cross_ap_input_from_ckms_maps_gain_to_pixels(rng):
    gain_a = rng.uniform(-200.0, -80.0, size=(8, 8))
    gain_b = rng.uniform(-200.0, -80.0, size=(8, 8))
    ckm_a = _ckm((1.0, 1.0, 10.0), gain_a)    # cell (0, 0)
    ckm_b = _ckm((15.0, 9.0, 10.0), gain_b)   # cell (4, 7)
    inputs = cross_ap_input_from_ckms([ckm_a, ckm_b], target_position_m=(9.0, 9.0), weight=0.3)
    pixels = np.stack([gain_db_to_pixel(c["gain_db"].values, c["building"].values) for c in (ckm_a, ckm_b)])
    expected = cross_ap_input(pixels, np.array([[0, 0], [4, 7]]), target_cell=(4, 4), weight=0.3)
    np.testing.assert_array_equal(inputs, expected)
    # Building cells carry no gain: their feature is 0 unless the AP sits there
    assert inputs[0, 7, 1] == 0.0

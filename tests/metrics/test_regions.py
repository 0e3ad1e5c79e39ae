"""Region masks (LoS, NLoS, transition band) and per-region map scores on hand-made 8 x 8 CKMs."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.metrics.map_metrics import map_scores
from ckmsim.metrics.regions import REGIONS, region_masks, region_scores

N = 8


def _ckm(los, building=None, gain_db=None):
    """8 x 8 CKM: gain -100 dB (or ``gain_db``) outside buildings, NaN inside."""
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=N, num_y=N, cell_size_m=1.0)
    building = np.zeros((N, N), bool) if building is None else building
    gain_db = np.full((N, N), -100.0) if gain_db is None else gain_db
    return make_ckm(grid, {"gain_db": np.where(building, np.nan, gain_db), "los": los, "building": building})


def _cells(coordinates):
    """[8, 8] bool, True at the listed (row, col) cells."""
    mask = np.zeros((N, N), bool)
    for row, col in coordinates:
        mask[row, col] = True
    return mask


def _wall_case():
    """LoS in columns 0-2, a building wall in column 3 (flagged LoS, which must not count), NLoS in 4-7."""
    building = np.zeros((N, N), bool)
    building[:, 3] = True
    los = np.zeros((N, N), bool)
    los[:, :4] = True
    return los, building


# ------------------------------------------------------------------------------------------------ masks
def test_quadrant_masks_by_hand():
    los = np.zeros((N, N), bool)
    los[:4, :4] = True
    masks = region_masks(_ckm(los), transition_width_cells=1)
    assert list(masks) == list(REGIONS)
    np.testing.assert_array_equal(masks["non_building"], np.ones((N, N), bool))
    np.testing.assert_array_equal(masks["los"], los)
    np.testing.assert_array_equal(masks["nlos"], ~los)
    # LoS side: row 3 and column 3 of the quadrant; NLoS side: row 4 (cols 0-3) and column 4 (rows 0-3).
    # (4, 4) is sqrt(2) from the nearest LoS cell (3, 3): outside a band of width 1.
    los_side = [(3, 0), (3, 1), (3, 2), (3, 3), (0, 3), (1, 3), (2, 3)]
    nlos_side = [(4, 0), (4, 1), (4, 2), (4, 3), (0, 4), (1, 4), (2, 4), (3, 4)]
    np.testing.assert_array_equal(masks["transition"], _cells(los_side + nlos_side))
    wider = region_masks(_ckm(los), transition_width_cells=1.5)["transition"]
    np.testing.assert_array_equal(wider, _cells(los_side + nlos_side + [(4, 4)]))


def test_building_wall_is_not_a_transition():
    los, building = _wall_case()
    truth = _ckm(los, building)
    masks = region_masks(truth, transition_width_cells=1)
    np.testing.assert_array_equal(masks["non_building"], ~building)
    np.testing.assert_array_equal(masks["los"], los & ~building)  # the building's LoS flag is dropped
    expected_nlos = np.zeros((N, N), bool)
    expected_nlos[:, 4:] = True
    np.testing.assert_array_equal(masks["nlos"], expected_nlos)
    # The LoS and NLoS cells nearest each other are 2 cells apart, across the wall
    assert not masks["transition"].any()
    band = region_masks(truth)["transition"]  # default width 2
    expected_band = np.zeros((N, N), bool)
    expected_band[:, [2, 4]] = True
    np.testing.assert_array_equal(band, expected_band)


def test_all_nlos_map_has_empty_los_and_transition():
    building = _cells([(2, 2), (2, 3)])
    masks = region_masks(_ckm(np.zeros((N, N), bool), building))
    assert not masks["los"].any() and not masks["transition"].any()
    np.testing.assert_array_equal(masks["nlos"], ~building)


def test_mask_errors_name_the_argument():
    with pytest.raises(CkmsimError, match="transition_width_cells"):
        region_masks(_ckm(np.zeros((N, N), bool)), transition_width_cells=0)
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=N, num_y=N, cell_size_m=1.0)
    no_los = make_ckm(grid, {"gain_db": np.full((N, N), -90.0), "building": np.zeros((N, N), bool)})
    with pytest.raises(CkmsimError, match="lacks the 'los' layer"):
        region_masks(no_los)


# ------------------------------------------------------------------------------------------------ scores
def test_region_scores_by_hand():
    los, building = _wall_case()
    truth = _ckm(los, building)
    gain = np.full((N, N), -100.0)
    gain[0, 0] += 3.0   # LoS, outside the band
    gain[5, 2] += 3.0   # LoS, in the band (column 2)
    gain[1, 5] -= 4.0   # NLoS, outside the band
    pred = _ckm(los, building, gain)
    scores = region_scores(pred, truth)
    assert list(scores) == list(REGIONS)
    # gain-level MSE (CKMDiff eq. (26)) [dB^2] per region: squared errors / cells of the region
    assert scores["los"]["gain_mse_db2"] == pytest.approx((9 + 9) / 24)
    assert scores["nlos"]["gain_mse_db2"] == pytest.approx(16 / 32)
    assert scores["non_building"]["gain_mse_db2"] == pytest.approx(34 / 56)
    assert scores["transition"]["gain_mse_db2"] == pytest.approx(9 / 16)
    # pixel MSE (eq. (23)): a 3 dB error is 3 / 200 of the CKMImageNet pixel range
    assert scores["los"]["pixel_mse"] == pytest.approx(2 * (3 / 200) ** 2 / 24)
    assert [scores[name]["num_cells"] for name in REGIONS] == [56.0, 24.0, 32.0, 16.0]
    assert scores["non_building"] == map_scores(pred, truth) | {"num_cells": 56.0}


def test_empty_regions_are_nan_records_not_errors():
    truth = _ckm(np.zeros((N, N), bool))
    gain = np.full((N, N), -100.0)
    gain[4, 4] = -90.0
    scores = region_scores(_ckm(np.zeros((N, N), bool), gain_db=gain), truth)
    assert set(scores) == set(REGIONS)
    assert scores["nlos"]["gain_mse_db2"] == pytest.approx(100 / 64)
    for name in ("los", "transition"):
        assert set(scores[name]) == set(scores["nlos"])
        assert scores[name]["num_cells"] == 0.0
        assert all(np.isnan(value) for key, value in scores[name].items() if key != "num_cells")


def test_regions_by_name_or_ready_masks():
    los, building = _wall_case()
    truth = _ckm(los, building)
    masks = region_masks(truth)
    by_name = region_scores(truth, truth, regions=["transition", "los"])
    assert list(by_name) == ["transition", "los"]
    ready = region_scores(truth, truth, regions={"band": masks["transition"]})
    assert ready["band"] == by_name["transition"]
    assert by_name["los"]["gain_mse_db2"] == 0.0
    with pytest.raises(CkmsimError, match="regions must name some of"):
        region_scores(truth, truth, regions=["street"])
    with pytest.raises(CkmsimError, match="region must be a boolean"):
        region_scores(truth, truth, regions={"band": masks["transition"].astype(float)})
    with pytest.raises(CkmsimError, match="every region .* is empty"):
        region_scores(truth, truth, regions={"nothing": np.zeros((N, N), bool)})

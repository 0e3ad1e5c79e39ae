"""map_score_cells counts the cells each map score averages over, checked against counts made by hand on a
map whose buildings, paths and missing angles are placed by construction."""

import numpy as np

from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.metrics.map_metrics import map_score_cells, map_scores


def _ckm(measured_only=False):
    """8 x 8 cells, a 2 x 2 building at rows 2-3, cols 3-4 (60 open cells); path 0 in every open cell, path
    1 only in rows 0-3 (32 - 4 building = 28 open cells); ``measured_only``: angles only on the even lattice."""
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=8, num_y=8, cell_size_m=1.0)
    building = np.zeros(grid.shape, bool)
    building[2:4, 3:5] = True
    gain_db = np.where(building, np.nan, -100.0)
    path_gain_db = np.stack([gain_db - 1.0, np.full(grid.shape, GAIN_FLOOR_DB)])
    path_gain_db[1, :4] = -110.0
    path_gain_db[:, building] = GAIN_FLOOR_DB
    exists = path_gain_db > GAIN_FLOOR_DB
    if measured_only:
        lattice = np.zeros(grid.shape, bool)
        lattice[::2, ::2] = True
        exists = exists & lattice
    az = np.where(exists, 10.0, np.nan)
    el = np.where(exists, 5.0, np.nan)
    return make_ckm(grid, {"gain_db": gain_db, "building": building, "path_gain_db": path_gain_db,
                           "aoa_az_deg": az, "aoa_el_deg": el})


def test_counts_by_hand():
    truth = _ckm()
    cells = map_score_cells(truth, truth)
    assert set(cells) == set(map_scores(truth, truth))
    for key in ("gain_mse_db2", "gain_rmse_db", "pixel_mse", "pixel_rmse", "nmse", "psnr_db"):
        assert cells[key] == 60, key
    # 7 x 7 windows on 8 x 8 cells: only rows and cols 3-4 are a full window from the edge; (3, 3) and
    # (3, 4) are building
    assert cells["ssim"] == 2
    for key in ("path_gain_rmse_db", "aoa_az_rmse_deg", "aoa_el_rmse_deg", "aoa_rmse_deg"):
        assert cells[key] == 60 + 28, key


def test_angles_on_fewer_cells_are_counted_on_fewer_cells():
    truth = _ckm()
    sparse = _ckm(measured_only=True)
    cells = map_score_cells(sparse, truth)
    # even rows and cols: 16 lattice cells, one of them, (2, 4), in the building
    lattice_open = 16 - 1
    lattice_path1 = 8 - 1  # lattice cells of rows 0 and 2, less (2, 4)
    for key in ("aoa_az_rmse_deg", "aoa_el_rmse_deg", "aoa_rmse_deg"):
        assert cells[key] == lattice_open + lattice_path1, key
    assert cells["path_gain_rmse_db"] == 88  # the path gains of the truth decide it, not the angles
    # a perfect score on the few cells it has (float32 layers: not exactly 0)
    assert map_scores(sparse, truth)["aoa_rmse_deg"] < 1e-4


def test_region_restricts_every_count():
    truth = _ckm()
    region = np.zeros((8, 8), bool)
    region[0, :] = True
    cells = map_score_cells(truth, truth, region)
    assert cells["gain_rmse_db"] == 8
    assert cells["ssim"] == 0
    assert cells["aoa_rmse_deg"] == 16

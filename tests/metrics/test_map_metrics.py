"""Map metrics against hand-worked values on tiny maps and against skimage's reference implementations."""

import json

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.metrics.map_metrics import (angle_rmse_deg, direction_rmse_deg, map_scores, mse, nmse, psnr_db,
                                        rmse, scm_cosine_similarity, ssim)

PRED = np.array([[1.0, 2.0], [3.0, 4.0]])
TRUTH = np.array([[1.0, 0.0], [0.0, 4.0]])


# ------------------------------------------------------------------------------------------------ mse/rmse
def test_mse_rmse_by_hand():
    # errors 0, 2, 3, 0 -> (4 + 9) / 4
    assert mse(PRED, TRUTH) == pytest.approx(3.25)
    assert rmse(PRED, TRUTH) == pytest.approx(np.sqrt(3.25))
    mask = np.array([[True, False], [True, True]])
    # errors 0, 3, 0 -> 9 / 3
    assert mse(PRED, TRUTH, mask) == pytest.approx(3.0)
    assert isinstance(mse(PRED, TRUTH, mask), float)


def test_masked_out_cell_does_not_count():
    mask = np.array([[True, False], [True, True]])
    wild = PRED.copy()
    wild[0, 1] = 1e9
    for metric in (mse, rmse, nmse, psnr_db, angle_rmse_deg):
        assert metric(wild, TRUTH, mask) == metric(PRED, TRUTH, mask)
    wild[0, 1] = np.nan  # NaN outside the mask is fine (building cells carry NaN gain)
    assert mse(wild, TRUTH, mask) == pytest.approx(3.0)


# ------------------------------------------------------------------------------------------------ nmse
def test_nmse_by_hand():
    truth = np.array([[0.5, 0.5], [1.0, 0.0]])
    pred = np.array([[0.5, 0.0], [0.5, 0.0]])
    # sum err^2 = 0.25 + 0.25, sum truth^2 = 0.25 + 0.25 + 1
    assert nmse(pred, truth) == pytest.approx(0.5 / 1.5)
    mask = np.array([[True, True], [False, True]])
    assert nmse(pred, truth, mask) == pytest.approx(0.25 / 0.5)


def test_nmse_zero_truth_energy():
    zeros = np.zeros((2, 2))
    assert nmse(zeros, zeros) == 0.0
    assert nmse(zeros + 0.1, zeros) == float("inf")


# ------------------------------------------------------------------------------------------------ psnr
def test_psnr_by_hand():
    truth = np.zeros((2, 2))
    pred = np.array([[0.1, 0.0], [0.0, 0.1]])
    # eq. (29): 10 log10(lw / sum err^2) = 10 log10(4 / 0.02)
    assert psnr_db(pred, truth) == pytest.approx(10 * np.log10(200.0))
    mask = np.array([[False, True], [True, True]])
    assert psnr_db(pred, truth, mask) == pytest.approx(10 * np.log10(300.0))
    assert psnr_db(truth, truth) == float("inf")


def test_psnr_matches_skimage_full_mask():
    rng = np.random.default_rng(0)
    truth = rng.random((16, 16))
    pred = np.clip(truth + 0.1 * rng.standard_normal((16, 16)), 0, 1)
    expected = peak_signal_noise_ratio(truth, pred, data_range=1.0)
    assert psnr_db(pred, truth, np.ones((16, 16), bool)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------------------ ssim
def test_ssim_matches_skimage_full_mask():
    rng = np.random.default_rng(1)
    truth = rng.random((20, 24))
    pred = np.clip(truth + 0.2 * rng.standard_normal((20, 24)), 0, 1)
    expected = structural_similarity(truth, pred, data_range=1.0)
    assert ssim(pred, truth, np.ones((20, 24), bool)) == pytest.approx(expected, rel=1e-12)
    assert ssim(pred, truth) == pytest.approx(expected, rel=1e-12)


def test_ssim_identical_is_one():
    rng = np.random.default_rng(2)
    image = rng.random((9, 9))
    assert ssim(image, image) == pytest.approx(1.0)
    mask = rng.random((9, 9)) > 0.5
    assert ssim(image, image, mask) == pytest.approx(1.0)


def test_ssim_by_hand_3x3():
    # A 3x3 image has one window (3x3) and one scored cell (the centre): eq. (30) on whole-image statistics
    # with skimage's sample (co)variances, C1 = (0.01)^2, C2 = (0.03)^2.
    truth = np.zeros((3, 3))
    truth[1, 1] = 0.9
    pred = np.zeros((3, 3))
    mu_x, var_x = 0.1, (0.81 - 9 * 0.01) / 8  # = 0.09
    c1, c2 = 1e-4, 9e-4
    expected = (c1 * c2) / ((mu_x ** 2 + c1) * (var_x + c2))
    assert ssim(pred, truth) == pytest.approx(expected, rel=1e-9)


def test_ssim_mask_averages_local_map_and_ignores_nan_outside():
    rng = np.random.default_rng(3)
    truth = rng.random((12, 12))
    pred = np.clip(truth + 0.2 * rng.standard_normal((12, 12)), 0, 1)
    _, ssim_map = structural_similarity(truth, pred, data_range=1.0, full=True)
    mask = np.zeros((12, 12), bool)
    mask[4:7, 5:9] = True
    assert ssim(pred, truth, mask) == pytest.approx(ssim_map[mask].mean(), rel=1e-12)
    with pytest.raises(CkmsimError, match="edge"):
        ssim(pred, truth, np.pad(np.ones((10, 10), bool), 1) & ~np.pad(np.ones((6, 6), bool), 3))  # border only


# ------------------------------------------------------------------------------------------------ angles
def test_angle_rmse_wraps():
    assert angle_rmse_deg(np.array([179.0]), np.array([-179.0])) == pytest.approx(2.0)
    pred = np.array([10.0, 179.0, 0.0])
    truth = np.array([0.0, -179.0, 0.0])
    assert angle_rmse_deg(pred, truth) == pytest.approx(np.sqrt((100 + 4 + 0) / 3))


def test_direction_rmse_by_hand():
    assert direction_rmse_deg(np.array([0.0]), np.array([0.0]), np.array([90.0]), np.array([0.0])) \
        == pytest.approx(90.0)
    # Second cell: both point at the zenith, azimuth is irrelevant there -> 0 deg
    pred_az, pred_el = np.array([0.0, 0.0]), np.array([0.0, 90.0])
    truth_az, truth_el = np.array([90.0, 45.0]), np.array([0.0, 90.0])
    assert direction_rmse_deg(pred_az, pred_el, truth_az, truth_el) == pytest.approx(np.sqrt(90.0 ** 2 / 2))
    # Identical directions: clipping keeps arccos finite
    az = np.array([33.3, -120.0])
    el = np.array([12.0, -45.0])
    assert direction_rmse_deg(az, el, az, el) == pytest.approx(0.0, abs=1e-5)


# ------------------------------------------------------------------------------------------------ scm
def test_scm_cosine_similarity():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((4, 1)) + 1j * rng.standard_normal((4, 1))
    r = a @ a.conj().T + np.eye(4)
    assert scm_cosine_similarity(r, r) == pytest.approx(1.0)
    assert scm_cosine_similarity(2 * r, r) == pytest.approx(1.0)
    e0 = np.array([[1.0], [0.0]])
    e1 = np.array([[0.0], [1j]])
    assert scm_cosine_similarity(e0 @ e0.conj().T, e1 @ e1.conj().T) == pytest.approx(0.0)
    # tr(diag(1,0) I) / (1 * sqrt(2))
    assert scm_cosine_similarity(np.diag([1.0, 0.0]), np.eye(2)) == pytest.approx(1 / np.sqrt(2))
    assert isinstance(scm_cosine_similarity(r, r), float)


def test_scm_cosine_similarity_batch_and_zero():
    rng = np.random.default_rng(5)
    batch = rng.standard_normal((2, 3, 4, 4))
    batch = batch @ np.swapaxes(batch, -1, -2)
    batch[1, 2] = 0.0
    corr = scm_cosine_similarity(batch, batch)
    assert corr.shape == (2, 3)
    np.testing.assert_allclose(corr[0], 1.0)
    assert corr[1, 2] == 0.0
    with pytest.raises(CkmsimError, match="truth_scm"):
        scm_cosine_similarity(batch, batch[0])
    with pytest.raises(CkmsimError, match="square"):
        scm_cosine_similarity(np.ones((2, 3)), np.ones((2, 3)))


# ------------------------------------------------------------------------------------------------ errors
def test_errors_name_the_argument():
    with pytest.raises(CkmsimError, match="truth has shape"):
        mse(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(CkmsimError, match="mask has shape"):
        mse(np.zeros((2, 2)), np.zeros((2, 2)), np.ones((3, 2), bool))
    with pytest.raises(CkmsimError, match="mask is empty"):
        rmse(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2), bool))
    with pytest.raises(CkmsimError, match="boolean"):
        mse(np.zeros((2, 2)), np.zeros((2, 2)), np.ones((2, 2)))
    pred = np.array([[np.nan, np.nan], [0.0, 1.0]])
    with pytest.raises(CkmsimError, match="pred has 2 NaN"):
        psnr_db(pred, np.zeros((2, 2)))
    with pytest.raises(CkmsimError, match="truth has 1 NaN"):
        ssim(np.zeros((3, 3)), np.where(np.eye(3, dtype=bool) & (np.arange(3) == 0), np.nan, 0.0))
    with pytest.raises(CkmsimError, match="truth_el has shape"):
        direction_rmse_deg(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(3))


# ------------------------------------------------------------------------------------------------ map_scores
def _tiny_ckm(gain_shift_db=0.0, az_shift_deg=0.0, paths=True):
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=8, num_y=8, cell_size_m=1.0)
    rng = np.random.default_rng(6)
    building = np.zeros(grid.shape, bool)
    building[2:4, 3:5] = True
    gain_db = rng.uniform(-150.0, -60.0, grid.shape) + gain_shift_db
    gain_db[building] = np.nan
    variables = {"gain_db": gain_db, "building": building}
    if paths:
        path_gain_db = np.stack([gain_db - 1.0, np.full(grid.shape, GAIN_FLOOR_DB)])
        path_gain_db[1, :4] = gain_db[:4] - 10.0  # the second path exists only in the lower half
        path_gain_db[:, building] = GAIN_FLOOR_DB
        exists = path_gain_db > GAIN_FLOOR_DB
        az = np.where(exists, rng.uniform(-170.0, 170.0, path_gain_db.shape), np.nan)
        el = np.where(exists, rng.uniform(-30.0, 30.0, path_gain_db.shape), np.nan)
        variables.update(path_gain_db=path_gain_db, aoa_az_deg=((az + 180 + az_shift_deg) % 360) - 180,
                         aoa_el_deg=el)
    return make_ckm(grid, variables)


PIXEL_KEYS = {"gain_mse_db2", "gain_rmse_db", "pixel_mse", "pixel_rmse", "nmse", "psnr_db", "ssim"}
PATH_KEYS = {"path_gain_rmse_db", "aoa_az_rmse_deg", "aoa_el_rmse_deg", "aoa_rmse_deg"}


def test_map_scores_identical():
    truth = _tiny_ckm()
    scores = map_scores(truth, truth)
    assert set(scores) == PIXEL_KEYS | PATH_KEYS
    assert all(type(value) is float for value in scores.values())
    for key in (PIXEL_KEYS | PATH_KEYS) - {"psnr_db", "ssim"}:
        assert scores[key] == pytest.approx(0.0, abs=1e-5), key
    assert scores["psnr_db"] == float("inf")
    assert scores["ssim"] == pytest.approx(1.0)
    json.dumps(scores)


def test_map_scores_known_errors_and_region():
    truth = _tiny_ckm()
    pred = _tiny_ckm(gain_shift_db=2.0, az_shift_deg=10.0)
    scores = map_scores(pred, truth)
    assert scores["gain_rmse_db"] == pytest.approx(2.0, rel=1e-5)
    assert scores["gain_mse_db2"] == pytest.approx(4.0, rel=1e-5)
    assert scores["pixel_rmse"] == pytest.approx(2.0 / 200.0, rel=1e-4)  # 200 dB span -> pixel [0, 1]
    assert scores["path_gain_rmse_db"] == pytest.approx(2.0, rel=1e-5)  # path gains follow gain_db
    assert scores["aoa_az_rmse_deg"] == pytest.approx(10.0, rel=1e-4)  # wrapped across +-180 too
    assert scores["aoa_el_rmse_deg"] == pytest.approx(0.0)
    assert 0.0 < scores["aoa_rmse_deg"] <= 10.0 + 1e-4  # great-circle <= azimuth error when el != 0
    region = np.zeros((8, 8), bool)
    region[6:, :] = True
    edge_scores = map_scores(pred, truth, region)
    assert edge_scores["gain_rmse_db"] == pytest.approx(2.0, rel=1e-5)
    assert np.isnan(edge_scores["ssim"])  # no cell of the two edge rows has a full 7x7 SSIM window
    with pytest.raises(CkmsimError, match="region is empty"):
        map_scores(pred, truth, np.zeros((8, 8), bool))


def test_map_scores_without_paths_and_with_no_qualifying_cell():
    truth = _tiny_ckm()
    assert set(map_scores(_tiny_ckm(paths=False), truth)) == PIXEL_KEYS
    region = np.zeros((8, 8), bool)
    region[6:, :] = True  # upper rows: only path 0 exists there
    pred = truth.copy(deep=True)
    pred["aoa_az_deg"][:] = np.nan  # a method that predicts no azimuth at all
    scores = map_scores(pred, truth, region)
    assert np.isnan(scores["aoa_az_rmse_deg"]) and np.isnan(scores["aoa_rmse_deg"])
    assert scores["aoa_el_rmse_deg"] == pytest.approx(0.0)


def test_map_scores_grid_mismatch():
    truth = _tiny_ckm()
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=4, num_y=4, cell_size_m=1.0)
    other = make_ckm(grid, {"gain_db": np.full((4, 4), -100.0), "building": np.zeros((4, 4), bool)})
    with pytest.raises(CkmsimError, match="same grid"):
        map_scores(other, truth)


def test_map_scores_ignore_building_cells_of_prediction():
    truth = _tiny_ckm()
    pred = truth.copy(deep=True)
    pred["gain_db"].values[2:4, 3:5] = 0.0  # wildly wrong inside the truth's buildings
    scores = map_scores(pred, truth)
    assert scores["gain_rmse_db"] == 0.0 and scores["pixel_rmse"] == 0.0
    assert scores["ssim"] == pytest.approx(1.0)


def test_map_scores_by_hand_and_gain_pixel_relation():
    # Truth -150 dB -> pixel 0.5 everywhere outside the building; prediction -130 dB -> pixel 0.6 (eq. (27):
    # g = 200 x - 250). Per-cell errors: 20 dB, 0.1 pixel.
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=8, num_y=8, cell_size_m=1.0)
    building = np.zeros((8, 8), bool)
    building[0, :2] = True

    def ckm(gain):
        return make_ckm(grid, {"gain_db": np.where(building, np.nan, gain), "building": building})

    scores = map_scores(ckm(np.full((8, 8), -130.0)), ckm(np.full((8, 8), -150.0)))
    assert scores["gain_mse_db2"] == pytest.approx(400.0)  # eq. (26)
    assert scores["gain_rmse_db"] == pytest.approx(20.0)
    assert scores["pixel_mse"] == pytest.approx(0.01)  # eq. (23)
    assert scores["pixel_rmse"] == pytest.approx(0.1)  # eq. (24)
    assert scores["nmse"] == pytest.approx(0.01 / 0.25)  # eq. (25): sum 0.1^2 / sum 0.5^2
    assert scores["psnr_db"] == pytest.approx(20.0)  # eq. (29): 10 log10(1 / 0.01)
    # Within CKMImageNet's range the gain MSE is 200^2 times the pixel MSE, whatever the error pattern
    rng = np.random.default_rng(7)
    truth_gain, pred_gain = rng.uniform(-240.0, -60.0, (2, 8, 8))
    scores = map_scores(ckm(pred_gain), ckm(truth_gain))
    assert scores["gain_mse_db2"] == pytest.approx(200.0 ** 2 * scores["pixel_mse"], rel=1e-5)

"""Interpolation baselines: exact at samples, closed forms (planes), convergence, the azimuth seam, masks."""

from dataclasses import replace

import numpy as np
import pytest

from scipy.interpolate import make_interp_spline

from ckmsim.baselines.interpolation import INTERPOLATORS, KNN, Bicubic, Bilinear, CodedBicubic
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB, validate_ckm
from ckmsim.maps.degrade import uniform_subsample
from ckmsim.maps.pixels import CKMIMAGENET_ANGLE_RANGE_DEG, CKMIMAGENET_GAIN_RANGE_DB

from toy_ckms import FLOAT_LAYERS, _map_truth, _plane, _random_truth

METHODS = sorted(INTERPOLATORS)


def _hull(n, factor):
    """[n, n] bool: cells inside the sub-sampling lattice's convex hull."""
    last = (n - 1) // factor * factor
    inside = np.arange(n) <= last
    return inside[:, None] & inside[None, :]


@pytest.mark.parametrize("method", ["bilinear", "bicubic"])
@pytest.mark.parametrize("n, factor", [(17, 4), (16, 4), (16, 3), (17, 2)])
def test_lattice_methods_reproduce_a_plane(method, n, factor):
    truth = _map_truth(_plane(n))
    predicted = INTERPOLATORS[method]().predict(uniform_subsample(truth, factor))
    inside = _hull(n, factor)
    np.testing.assert_allclose(predicted["gain_db"].values[inside], truth["gain_db"].values[inside],
                               rtol=0, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_output_is_a_valid_ckm_with_every_layer(method):
    truth = _random_truth(16, seed=3)
    observation = uniform_subsample(truth, 4)
    predicted = INTERPOLATORS[method]().predict(observation)
    validate_ckm(predicted)
    assert set(predicted.data_vars) == set(FLOAT_LAYERS) | {"building"}
    np.testing.assert_array_equal(predicted["building"].values, truth["building"].values)
    assert predicted.attrs["method"] == method
    assert predicted.attrs["task"] == "sr_x4"
    assert predicted.attrs["scene"] == "toy"
    assert predicted.attrs["grid"] == truth.attrs["grid"]
    # Path layers: every cell gets a value; the floor code of an absent path is not a sample of the gain
    assert np.all(np.isfinite(predicted["path_gain_db"].values))
    assert np.all(np.isfinite(predicted["aoa_az_deg"].values))
    assert np.all(predicted["path_gain_db"].values[1] > GAIN_FLOOR_DB)


@pytest.mark.parametrize("method", METHODS)
def test_absent_path_codes_are_not_interpolated_as_gains(method):
    n = 16
    truth = _map_truth(_plane(n))
    truth["path_gain_db"] = (("path", "y", "x"), _plane(n)[None])
    observation = uniform_subsample(truth, 2)
    reference = INTERPOLATORS[method]().predict(observation)["path_gain_db"].values[0]
    observation.values["path_gain_db"].values[0, 4, 4] = GAIN_FLOOR_DB  # a measured cell without the path
    predicted = INTERPOLATORS[method]().predict(observation)["path_gain_db"].values[0]
    # the neighbours of the hole stay within a few dB of the plane; the code would pull them ~100 dB down
    assert np.abs(predicted[3:6, 3:6] - reference[3:6, 3:6]).max() < 5.0
    # a path that no sample has keeps the code everywhere
    observation.values["path_gain_db"].values[...] = GAIN_FLOOR_DB
    assert np.all(INTERPOLATORS[method]().predict(observation)["path_gain_db"].values == GAIN_FLOOR_DB)


@pytest.mark.parametrize("method", METHODS)
def test_layer_without_any_valid_sample_is_nan(method):
    n = 16
    az_deg = np.full((1, n, n), np.nan)
    predicted = INTERPOLATORS[method]().predict(uniform_subsample(_map_truth(_plane(n), az_deg=az_deg), 4))
    assert np.all(np.isnan(predicted["aoa_az_deg"].values))


@pytest.mark.parametrize("cls", [Bilinear, Bicubic])
def test_lattice_methods_need_a_factor(cls):
    observation = replace(uniform_subsample(_map_truth(_plane(16)), 4), factor=None)
    with pytest.raises(CkmsimError, match=cls.name):
        cls().predict(observation)


def test_knn_works_without_a_factor():
    observation = uniform_subsample(_map_truth(_plane(16)), 4)
    with_factor = KNN().predict(observation)
    without_factor = KNN().predict(replace(observation, factor=None))
    np.testing.assert_array_equal(with_factor["gain_db"].values, without_factor["gain_db"].values)


def test_knn_with_one_neighbour_is_nearest_neighbour():
    truth = _map_truth(_plane(16))
    predicted = KNN(k=1).predict(uniform_subsample(truth, 4))["gain_db"].values
    rows, cols = np.indices((16, 16))
    # Ties (cells half-way between two samples) may go either way; check the unambiguous ones.
    clear = (rows % 4 != 2) & (cols % 4 != 2)
    nearest = truth["gain_db"].values[(4 * np.round(rows / 4).astype(int)).clip(0, 12),
                                      (4 * np.round(cols / 4).astype(int)).clip(0, 12)]
    np.testing.assert_allclose(predicted[clear], nearest[clear], atol=1e-4)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_knn_rejects_bad_k(k):
    with pytest.raises(CkmsimError, match="k="):
        KNN(k=k)


def test_predict_has_no_side_effects():
    observation = uniform_subsample(_random_truth(16, seed=5), 4)
    before = observation.values.copy(deep=True)
    Bicubic().predict(observation)
    assert observation.values.identical(before)


# ------------------------------------------------------------------------------------------- CodedBicubic
def _path_truth(n, building=None):
    """One path whose gain [dB] and azimuth [deg] are planes (no wrap): linear in the CKMImageNet pixels too."""
    building = np.zeros((n, n), dtype=bool) if building is None else building
    rows, cols = np.indices((n, n))
    truth = _map_truth(_plane(n), building)
    path_gain = np.where(building, GAIN_FLOOR_DB, _plane(n))
    az = np.where(building, np.nan, 2.0 * cols - 1.5 * rows + 10.0)
    truth["path_gain_db"] = (("path", "y", "x"), path_gain[None])
    truth["aoa_az_deg"] = (("path", "y", "x"), az[None])
    return truth


def _cardinal_cubic_at_half():
    """h(1/2) of the interpolating cubic spline through a unit impulse, by a 1-D spline far from its ends."""
    knots = np.arange(-40, 41, dtype=np.float64)
    return float(make_interp_spline(knots, (knots == 0).astype(np.float64), k=3)(0.5))


def test_coded_bicubic_reproduces_planes_inside_the_lattice():
    n, factor = 17, 2
    truth = _path_truth(n)
    predicted = CodedBicubic().predict(uniform_subsample(truth, factor))
    np.testing.assert_allclose(predicted["path_gain_db"].values[0], truth["path_gain_db"].values[0], atol=1e-6)
    np.testing.assert_allclose(predicted["aoa_az_deg"].values[0], truth["aoa_az_deg"].values[0], atol=1e-6)
    assert predicted.attrs["method"] == "bicubic-coded"


def test_coded_bicubic_pulls_open_neighbours_of_a_building_sample_toward_its_code():
    # the paper's bicubic interpolates the building code (pixel 0) like any pixel: the open cell half a lattice
    # step away moves by h(1/2) of the code's jump, h the cardinal cubic spline's impulse response
    n, factor, row, col = 33, 2, 16, 16
    building = np.zeros((n, n), dtype=bool)
    building[row, col] = True
    truth = _path_truth(n, building)
    observation = uniform_subsample(truth, factor)
    coded = CodedBicubic().predict(observation)
    half = _cardinal_cubic_at_half()
    gain_low, gain_high = CKMIMAGENET_GAIN_RANGE_DB
    plane_pixel = (_plane(n)[row, col] - gain_low) / (gain_high - gain_low)
    expected_gain = _plane(n)[row, col + 1] - half * plane_pixel * (gain_high - gain_low)
    assert coded["path_gain_db"].values[0, row, col + 1] == pytest.approx(expected_gain, abs=0.05)
    assert coded["path_gain_db"].values[0, row + 1, col + 1] == pytest.approx(
        _plane(n)[row + 1, col + 1] - half ** 2 * plane_pixel * (gain_high - gain_low), abs=0.05)
    angle_low, angle_high = CKMIMAGENET_ANGLE_RANGE_DEG
    az = truth["aoa_az_deg"].values[0]
    az_pixel = (10.0 + 2.0 * col - 1.5 * row - angle_low) / (angle_high - angle_low)
    assert coded["aoa_az_deg"].values[0, row, col + 1] == pytest.approx(
        az[row, col + 1] - half * az_pixel * (angle_high - angle_low), abs=0.05)
    # ckmsim's Bicubic does not interpolate the code: it stays on the plane there
    ours = Bicubic().predict(observation)
    assert abs(ours["path_gain_db"].values[0, row, col + 1] - _plane(n)[row, col + 1]) < 1.0
    assert np.isnan(coded["aoa_az_deg"].values[0, row, col])
    assert coded["path_gain_db"].values[0, row, col] == GAIN_FLOOR_DB


def test_coded_bicubic_needs_a_lattice_and_both_path_layers():
    truth = _path_truth(9)
    observation = uniform_subsample(truth, 2)
    with pytest.raises(CkmsimError, match="factor=None"):
        CodedBicubic().predict(replace(observation, factor=None))
    with pytest.raises(CkmsimError, match="aoa_az_deg"):
        CodedBicubic().predict(replace(observation, values=observation.values.drop_vars("aoa_az_deg")))

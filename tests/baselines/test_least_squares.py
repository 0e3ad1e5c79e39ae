"""Least squares, CKMDiff eq. (3): exact at measurements, numpy's pinv on a tiny case, block replication,
the pixel-domain zero (-250 dB) and absent angles off the footprint, a valid CKM."""

from dataclasses import replace

import numpy as np
import pytest

from ckmsim.baselines.base import Method
from ckmsim.baselines.least_squares import LEAST_SQUARES, LeastSquares
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm, validate_ckm
from ckmsim.maps.degrade import (BlockAverage, BoxMask, GaussianNoise, RandomMask, SparsePoints, Subsample, degrade,
                                 uniform_subsample)

from toy_ckms import FLOAT_LAYERS, assert_layer_close, _building, _grid, _map_truth, _plane, _random_truth

SAMPLING_STEPS = [(Subsample(4),), (BoxMask(6),), (RandomMask(0.5),), (SparsePoints(20),)]


def _close(name, got, want):
    assert_layer_close(name, got, want, atol=1e-3)


@pytest.mark.parametrize("steps", SAMPLING_STEPS)
def test_exact_at_measurements_floor_and_no_path_elsewhere(steps):
    truth = _random_truth(16, seed=3)
    observation = degrade(truth, *steps, seed=1)
    predicted = LeastSquares().predict(observation)
    validate_ckm(predicted)
    observed, building = observation.observed, observation.building
    for name in FLOAT_LAYERS:
        measured = observation.values[name].values
        valid = np.isfinite(measured) & observed
        _close(name, predicted[name].values[valid], measured[valid])
    # A^+ zero-fills: pixel 0 = -250 dB for gains, no path (NaN) for angles and delays
    unobserved = ~observed & ~building
    np.testing.assert_array_equal(predicted["gain_db"].values[unobserved], GAIN_FLOOR_DB)
    np.testing.assert_array_equal(predicted["path_gain_db"].values[:, unobserved], GAIN_FLOOR_DB)
    for name in ("aoa_az_deg", "aoa_el_deg", "toa_s"):
        assert np.all(np.isnan(predicted[name].values[:, unobserved]))
    assert np.all(np.isnan(predicted["gain_db"].values[building]))


@pytest.mark.parametrize("steps", [(BlockAverage(2),), (BoxMask(2, position=(0, 1)),), (RandomMask(0.25), BlockAverage(2))])
def test_gain_equals_numpy_pinv_in_the_pixel_domain(steps):
    n = 4
    rng = np.random.default_rng(0)
    building = np.zeros((n, n), dtype=bool)
    building[3, 0] = True
    truth = _map_truth(rng.uniform(-140.0, -60.0, (n, n)), building=building)
    observation = degrade(truth, *steps, seed=2)
    operator = observation.operator
    y_db = operator.read(observation.values["gain_db"].values.astype(np.float64))
    # CKMImageNet pixels: p = (g + 250) / 200; LS in pixels, back to dB
    y_pixel = (y_db + 250.0) / 200.0
    want_db = -250.0 + 200.0 * (np.linalg.pinv(operator.to_dense()) @ y_pixel)
    got_db = LeastSquares().predict(observation)["gain_db"].values.ravel()
    open_cells = ~building.ravel()
    np.testing.assert_allclose(got_db[open_cells], want_db[open_cells], rtol=0, atol=1e-3)


def test_block_average_reproduces_a_piecewise_constant_field_exactly():
    n, factor = 16, 4
    rng = np.random.default_rng(1)
    building = _building(n)

    def blocky(low, high, leading=()):
        # [..., n / factor, n / factor] block values repeated over each factor x factor block
        return np.kron(rng.uniform(low, high, leading + (n // factor, n // factor)), np.ones((factor, factor)))

    az = blocky(-180.0, 180.0, (1,))
    az[0, :4, :4] = 179.5  # a block next to the seam stays there
    variables = {"gain_db": np.where(building, np.nan, blocky(-140.0, -60.0)),
                 "path_gain_db": blocky(-150.0, -60.0, (1,)), "aoa_az_deg": az,
                 "aoa_el_deg": blocky(-30.0, 60.0, (1,)), "toa_s": blocky(1e-7, 1e-6, (1,)), "building": building}
    truth = make_ckm(_grid(n), variables)
    predicted = LeastSquares().predict(degrade(truth, BlockAverage(factor)))
    for name in FLOAT_LAYERS:
        want = truth[name].values
        got = predicted[name].values
        open_cells = np.broadcast_to(~building, want.shape)
        _close(name, got[open_cells], want[open_cells])


def test_block_average_of_a_varying_field_is_replicated_block_means():
    truth = _random_truth(16, seed=4)
    observation = degrade(truth, BlockAverage(4))
    predicted = LeastSquares().predict(observation)["gain_db"].values
    # every open cell of a block carries the block's mean of open cells
    open_cells = ~observation.building
    for row in range(0, 16, 4):
        for col in range(0, 16, 4):
            block = (slice(row, row + 4), slice(col, col + 4))
            cells = open_cells[block]
            want = np.mean(truth["gain_db"].values[block][cells])
            np.testing.assert_allclose(predicted[block][cells], want, rtol=0, atol=1e-3)


def test_noise_passes_straight_through():
    truth = _random_truth(16, seed=5)
    observation = degrade(truth, BoxMask(6), GaussianNoise(std_px=30 / 255), seed=3)
    predicted = LeastSquares().predict(observation)["gain_db"].values
    observed = observation.observed
    np.testing.assert_allclose(predicted[observed], observation.values["gain_db"].values[observed], atol=1e-3)
    assert np.max(np.abs(predicted[observed] - truth["gain_db"].values[observed])) > 20.0


def test_without_an_operator_ls_reads_the_observed_cells():
    observation = degrade(_random_truth(16, seed=6), RandomMask(0.6), seed=0)
    with_operator = LeastSquares().predict(observation)
    without = LeastSquares().predict(replace(observation, operator=None))
    for name in FLOAT_LAYERS:
        np.testing.assert_array_equal(with_operator[name].values, without[name].values)


def test_azimuth_across_the_seam_on_the_footprint():
    n = 16
    az_deg = np.where(np.arange(n)[None, None, :] < n // 2, 179.0, -179.0) * np.ones((1, n, n))
    truth = _map_truth(_plane(n), az_deg=az_deg)
    for observation in (uniform_subsample(truth, 4), degrade(truth, BlockAverage(4))):
        predicted = LeastSquares().predict(observation)["aoa_az_deg"].values
        footprint = observation.operator.footprint()
        assert np.all(np.abs(angle_difference_deg(predicted[:, footprint], 180.0)) < 2.0)
        assert np.all(np.isnan(predicted[:, ~footprint]))


def test_needs_gain_and_a_matching_operator():
    observation = uniform_subsample(_random_truth(16, seed=7), 4)
    with pytest.raises(CkmsimError, match="gain_db"):
        LeastSquares().predict(replace(observation, values=observation.values.drop_vars("gain_db")))
    other = uniform_subsample(_random_truth(17, seed=7), 4)
    with pytest.raises(CkmsimError, match="operator"):
        LeastSquares().predict(replace(observation, operator=other.operator))


def test_face_and_registry():
    method = LEAST_SQUARES["ls"]()
    assert isinstance(method, Method) and method.name == "ls"
    assert method.fit() is method and repr(method) == "LeastSquares()"
    predicted = method.predict(uniform_subsample(_random_truth(16, seed=8), 2))
    assert predicted.attrs["method"] == "ls" and predicted.attrs["task"] == "sr_x2"

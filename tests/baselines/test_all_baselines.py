"""Properties every reconstruction baseline shares: exact at samples, convergence, the azimuth seam, masks, the face."""

import numpy as np
import pytest

from ckmsim.baselines.base import Method
from ckmsim.baselines.interpolation import INTERPOLATORS, Interpolator
from ckmsim.baselines.least_squares import LEAST_SQUARES
from ckmsim.baselines.scattered import SCATTERED
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.degrade import uniform_subsample

from toy_ckms import FLOAT_LAYERS, assert_layer_close, _building, _map_truth, _plane, _random_truth

ALL_METHODS = {**INTERPOLATORS, **SCATTERED, **LEAST_SQUARES}
METHODS = sorted(ALL_METHODS)

#: Shared properties a method does not have by design, with the reason; its own tests cover what it does instead.
DOES_NOT_HOLD = {
    "angles_everywhere": {"ls": "LS (CKMDiff eq. 3) zero-fills: no path, NaN angles, off its measurements' "
                                "footprint (tests/baselines/test_least_squares.py checks the seam on the footprint)"},
    "repr_names_registry": {"ls": "registry name 'ls' abbreviates the class LeastSquares "
                                  "(test_least_squares.py checks repr == 'LeastSquares()')"},
}


def _methods(prop):
    """METHODS as pytest params, those for which ``prop`` does not hold skipped with the reason."""
    reasons = DOES_NOT_HOLD.get(prop, {})
    return [pytest.param(m, marks=pytest.mark.skip(reason=reasons[m])) if m in reasons else m for m in METHODS]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n, factor", [(16, 2), (16, 4), (17, 4), (17, 3)])
def test_exact_at_observed_cells(method, n, factor):
    observation = uniform_subsample(_random_truth(n, seed=n + factor), factor)
    predicted = ALL_METHODS[method]().predict(observation)
    observed = observation.observed
    for name in FLOAT_LAYERS:
        # [..., n, n]
        measured = observation.values[name].values
        valid = np.isfinite(measured) & observed
        if name == "path_gain_db" and issubclass(ALL_METHODS[method], Interpolator):
            # an interpolator fills a measured absence from the path's neighbours (test_interpolation.py)
            valid &= measured > GAIN_FLOOR_DB
        assert valid.any()
        assert_layer_close(name, predicted[name].values[valid], measured[valid])


@pytest.mark.parametrize("method", METHODS)
def test_finer_sampling_gives_lower_error_on_a_smooth_field(method):
    n = 17
    rows, cols = np.indices((n, n))
    truth = _map_truth(-100.0 + 10.0 * np.sin(2 * np.pi * cols / 16) * np.cos(2 * np.pi * rows / 20))
    rmse = {}
    for factor in (2, 4):
        predicted = ALL_METHODS[method]().predict(uniform_subsample(truth, factor))
        error = predicted["gain_db"].values - truth["gain_db"].values
        rmse[factor] = np.sqrt(np.mean(error**2))
    assert rmse[2] < rmse[4]


@pytest.mark.parametrize("method", _methods("angles_everywhere"))
def test_azimuth_across_the_seam_stays_near_180(method):
    n = 17
    # Left half of the map sees 179 deg, right half -179 deg: both 1 deg from the +-180 seam.
    az_deg = np.where(np.arange(n)[None, None, :] < n // 2, 179.0, -179.0) * np.ones((1, n, n))
    truth = _map_truth(_plane(n), az_deg=az_deg)
    predicted = ALL_METHODS[method]().predict(uniform_subsample(truth, 4))
    error_deg = angle_difference_deg(predicted["aoa_az_deg"].values, 180.0)
    assert np.all(np.abs(error_deg) < 2.0)


@pytest.mark.parametrize("method", METHODS)
def test_gain_is_nan_on_buildings_and_finite_elsewhere(method):
    n = 16
    building = _building(n)
    observation = uniform_subsample(_map_truth(_plane(n), building=building), 4)
    gain_db = ALL_METHODS[method]().predict(observation)["gain_db"].values
    assert np.all(np.isnan(gain_db[building]))
    assert np.all(np.isfinite(gain_db[~building]))


@pytest.mark.parametrize("method", METHODS)
def test_method_face(method):
    instance = ALL_METHODS[method]()
    assert isinstance(instance, Method)
    assert instance.fit() is instance
    assert instance.fit(train=[1], val=[2]) is instance
    assert instance.name == method


@pytest.mark.parametrize("method", _methods("repr_names_registry"))
def test_repr_names_the_registry_name(method):
    assert method in repr(ALL_METHODS[method]()).lower()

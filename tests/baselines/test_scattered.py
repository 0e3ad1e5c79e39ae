"""Scattered-data baselines (IDW, RBF, kriging): exact at samples, planes, convergence, the azimuth seam."""

from dataclasses import replace

import numpy as np
import pytest

from ckmsim.baselines.scattered import IDW, RBF, SCATTERED, Kriging
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import validate_ckm
from ckmsim.maps.degrade import uniform_subsample

from toy_ckms import FLOAT_LAYERS, _building, _map_truth, _plane, _random_truth

METHODS = sorted(SCATTERED)


@pytest.mark.parametrize("method", ["idw", "kriging"])
def test_exact_with_k_or_neighbour_limit(method):
    observation = uniform_subsample(_random_truth(16, seed=1), 2)
    instance = IDW(k=3) if method == "idw" else Kriging(neighbors=4)
    predicted = instance.predict(observation)["gain_db"].values
    observed = observation.observed
    np.testing.assert_allclose(predicted[observed], observation.values["gain_db"].values[observed],
                               rtol=0, atol=1e-3)


@pytest.mark.parametrize("neighbors", [None, 16])
def test_thin_plate_rbf_reproduces_a_plane(neighbors):
    n = 17
    truth = _map_truth(_plane(n))
    predicted = RBF(neighbors=neighbors).predict(uniform_subsample(truth, 4))["gain_db"].values
    # Thin-plate carries a degree-1 polynomial: the plane is reproduced everywhere, extrapolation included.
    np.testing.assert_allclose(predicted, truth["gain_db"].values, rtol=0, atol=1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_output_is_a_valid_ckm_without_needing_a_factor(method):
    truth = _random_truth(16, seed=3)
    observation = replace(uniform_subsample(truth, 4), factor=None)
    predicted = SCATTERED[method]().predict(observation)
    validate_ckm(predicted)
    assert set(predicted.data_vars) == set(FLOAT_LAYERS) | {"building"}
    assert predicted.attrs["method"] == method
    assert np.all(np.isfinite(predicted["path_gain_db"].values))
    assert np.all(np.isfinite(predicted["aoa_az_deg"].values))


def test_kriging_runs_on_a_32x32_x4_observation():
    n = 32
    rows, cols = np.indices((n, n))
    truth = _map_truth(-100.0 + 10.0 * np.sin(cols / 5.0) + 0.3 * rows, building=_building(n))
    predicted = Kriging().predict(uniform_subsample(truth, 4))["gain_db"].values
    assert np.all(np.isfinite(predicted[~_building(n)]))


@pytest.mark.parametrize("factory, match", [
    (lambda: IDW(power=0.0), "power="), (lambda: IDW(power=float("nan")), "power="),
    (lambda: IDW(k=0), "k="), (lambda: IDW(k=2.5), "k="),
    (lambda: RBF(kernel="nope"), "kernel="), (lambda: RBF(neighbors=0), "neighbors="),
    (lambda: RBF(smoothing=-1.0), "smoothing="), (lambda: RBF(epsilon=0.0), "epsilon="),
    (lambda: Kriging(variogram_model="cubic"), "variogram_model="), (lambda: Kriging(neighbors=-3), "neighbors="),
    (lambda: Kriging(neighbors=True), "neighbors="),
])
def test_bad_hyper_parameters_raise(factory, match):
    with pytest.raises(CkmsimError, match=match):
        factory()


def test_elevation_overshoot_is_clipped_to_the_pole():
    """An RBF through elevations near +-90 deg overshoots between samples; the output stays an angle."""
    from ckmsim.baselines.scattered import RBF
    from ckmsim.maps.ckm import make_ckm, validate_ckm
    from ckmsim.maps.degrade import uniform_subsample
    from ckmsim.maps.grid import Grid

    grid = Grid(0.0, 0.0, 16, 16, 1.0)
    rows, cols = np.indices(grid.shape)
    elevation = np.where((rows // 4 + cols // 4) % 2 == 0, 89.5, -89.5)[None]
    truth = make_ckm(grid, {"gain_db": np.full(grid.shape, -100.0), "building": np.zeros(grid.shape, bool),
                            "path_gain_db": np.full((1,) + grid.shape, -100.0),
                            "aoa_az_deg": np.zeros((1,) + grid.shape), "aoa_el_deg": elevation})
    prediction = RBF().predict(uniform_subsample(truth, 2))
    validate_ckm(prediction)
    assert np.nanmax(np.abs(prediction["aoa_el_deg"].values)) <= 90.0

"""Model-based baselines: path-loss fit + kriging, 3GPP UMi closed forms, distance-weighted cross-AP."""

import numpy as np
import pytest

from ckmsim.baselines.model_based import (PathLossKriging, ThreeGppUmi, cross_ap_weights,
                                          distance_weighted_cross_ap, umi_los_probability, umi_path_loss_db)
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm, validate_ckm
from ckmsim.maps.degrade import uniform_subsample
from ckmsim.maps.grid import Grid

BS_M = [3.0, -5.0, 10.0]
N = 24


def _truth(shadowing_db):
    """A CKM drawn from eq. (6) with K = -40 dB, n = 2.7 plus ``shadowing_db`` [N, N], one building block."""
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=N, num_y=N, cell_size_m=4.0)
    offset = grid.cell_centers_m() - np.asarray(BS_M)
    distance = np.linalg.norm(offset, axis=-1)
    gain = -40.0 - 10.0 * 2.7 * np.log10(distance) + shadowing_db
    building = np.zeros((N, N), dtype=bool)
    building[4:8, 14:18] = True
    gain[building] = np.nan
    return make_ckm(grid, {"gain_db": gain, "building": building},
                    {"scene": "toy", "frequency_hz": 28e9, "bs_position_m": BS_M})


def test_pathloss_kriging_recovers_parameters_without_shadowing():
    observation = uniform_subsample(_truth(np.zeros((N, N))), 3)
    ckm = PathLossKriging().predict(observation)
    validate_ckm(ckm)
    assert abs(ckm.attrs["k_db"] - (-40.0)) < 0.1
    assert abs(ckm.attrs["n_pl"] - 2.7) < 0.02
    assert ckm.attrs["method"] == "pathloss_kriging"
    truth = _truth(np.zeros((N, N)))["gain_db"].values
    np.testing.assert_allclose(ckm["gain_db"].values, truth, atol=1e-3)


def test_pathloss_kriging_exact_at_observed_cells_with_shadowing():
    rng = np.random.default_rng(0)
    truth = _truth(rng.normal(0.0, 6.0, (N, N)))
    observation = uniform_subsample(truth, 2)
    method = PathLossKriging(neighbors=16)
    ckm = method.predict(observation)
    predicted = ckm["gain_db"].values
    observed = observation.observed
    np.testing.assert_array_equal(predicted[observed], truth["gain_db"].values[observed])
    assert np.all(np.isfinite(predicted[~observation.building]))
    assert np.all(np.isnan(predicted[observation.building]))
    assert not hasattr(method, "k_db_")  # predict keeps no state


def test_pathloss_kriging_bad_inputs():
    with pytest.raises(CkmsimError, match="variogram_model"):
        PathLossKriging(variogram_model="cubic")
    with pytest.raises(CkmsimError, match="neighbors"):
        PathLossKriging(neighbors=0)
    observation = uniform_subsample(_truth(np.zeros((N, N))), 3)
    del observation.attrs["bs_position_m"]
    with pytest.raises(CkmsimError, match="bs_position_m"):
        PathLossKriging().predict(observation)


def test_umi_path_loss_hand_computed_at_28ghz():
    h_bs, h_ut, fc = 10.0, 1.5, 28e9
    d_bp = 4 * 9.0 * 0.5 * 28e9 / 3e8  # 1680 m
    for d_2d in (100.0, 2000.0):
        d_3d = np.hypot(d_2d, h_bs - h_ut)
        if d_2d < d_bp:
            expected_los = 32.4 + 21 * np.log10(d_3d) + 20 * np.log10(28.0)
        else:
            expected_los = (32.4 + 40 * np.log10(d_3d) + 20 * np.log10(28.0)
                            - 9.5 * np.log10(d_bp ** 2 + (h_bs - h_ut) ** 2))
        expected_nlos = max(expected_los, 35.3 * np.log10(d_3d) + 22.4 + 21.3 * np.log10(28.0))
        los = umi_path_loss_db(d_2d, d_3d, h_bs, h_ut, fc, los=True)
        nlos = umi_path_loss_db(d_2d, d_3d, h_bs, h_ut, fc, los=False)
        assert los == pytest.approx(expected_los, abs=1e-9)
        assert nlos == pytest.approx(expected_nlos, abs=1e-9)
    # 100 m LoS: 32.4 + 21 log10(100.36) + 20 log10(28) ~= 103.38 dB
    assert umi_path_loss_db(100.0, np.hypot(100.0, 8.5), h_bs, h_ut, fc, True) == pytest.approx(103.38, abs=0.01)


def test_umi_nlos_never_below_los_and_los_array():
    d_2d = np.linspace(1.0, 5000.0, 400)
    d_3d = np.hypot(d_2d, 8.5)
    los = umi_path_loss_db(d_2d, d_3d, 10.0, 1.5, 3.5e9, los=True)
    nlos = umi_path_loss_db(d_2d, d_3d, 10.0, 1.5, 3.5e9, los=False)
    assert np.all(nlos >= los)
    mask = np.arange(400) % 2 == 0
    mixed = umi_path_loss_db(d_2d, d_3d, 10.0, 1.5, 3.5e9, los=mask)
    np.testing.assert_array_equal(mixed, np.where(mask, los, nlos))


def test_umi_los_probability():
    assert umi_los_probability(10.0) == 1.0
    assert umi_los_probability(0.0) == 1.0
    assert umi_los_probability(100.0) == pytest.approx(18 / 100 + np.exp(-100 / 36) * (1 - 18 / 100))


def test_umi_bad_inputs():
    with pytest.raises(CkmsimError, match="d_3d_m"):
        umi_path_loss_db(10.0, 0.0, 10.0, 1.5, 28e9, True)
    with pytest.raises(CkmsimError, match="h_ut_m"):
        umi_path_loss_db(10.0, 12.0, 10.0, 0.5, 28e9, True)
    with pytest.raises(CkmsimError, match="frequency_hz"):
        umi_path_loss_db(10.0, 12.0, 10.0, 1.5, -1.0, True)
    with pytest.raises(CkmsimError, match="d_2d_m"):
        umi_los_probability(-1.0)
    with pytest.raises(CkmsimError, match="los"):
        ThreeGppUmi(los="map")


def test_three_gpp_umi_method_expected_gain():
    observation = uniform_subsample(_truth(np.zeros((N, N))), 3)
    ckm = ThreeGppUmi().predict(observation)
    validate_ckm(ckm)
    gain = ckm["gain_db"].values
    offset = observation.grid.cell_centers_m() - np.asarray(BS_M)
    d_2d = np.hypot(offset[..., 0], offset[..., 1])
    d_3d = np.linalg.norm(offset, axis=-1)
    los = umi_path_loss_db(d_2d, d_3d, 10.0, 1.5, 28e9, True)
    nlos = umi_path_loss_db(d_2d, d_3d, 10.0, 1.5, 28e9, False)
    # Expected gain lies between the NLoS and the LoS gains; equals LoS gain where P_LoS = 1 (d <= 18 m).
    free = ~observation.building
    assert np.all(gain[free] <= -los[free] + 1e-4) and np.all(gain[free] >= -nlos[free] - 1e-4)
    near = free & (d_2d <= 18.0)
    assert near.any()
    np.testing.assert_allclose(gain[near], -los[near], atol=1e-4)


def test_cross_ap_weights_and_limits():
    rng = np.random.default_rng(1)
    maps = rng.uniform(-120.0, -60.0, (3, 5, 6))
    positions = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 50.0]])
    weights = cross_ap_weights(positions, [5.0, 5.0])
    assert weights.sum() == pytest.approx(1.0)
    assert np.argmax(weights) == 0
    # equal distances: plain mean
    ring = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [-10.0, 0.0, 0.0]])
    np.testing.assert_allclose(distance_weighted_cross_ap(maps, ring, [0.0, 0.0, 0.0]), maps.mean(axis=0))
    # large beta: the nearest AP's map
    np.testing.assert_allclose(distance_weighted_cross_ap(maps, positions, [28.0, 1.0], beta=1e3), maps[1])
    # hand-computed eq. (7) weights with beta = 0.1
    d = np.linalg.norm(positions - [5.0, 5.0], axis=1)
    expected = np.exp(-0.1 * d) / np.exp(-0.1 * d).sum()
    np.testing.assert_allclose(weights, expected)


def test_cross_ap_bad_inputs():
    maps = np.zeros((2, 4, 4))
    positions = np.array([[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(CkmsimError, match="maps_db"):
        distance_weighted_cross_ap(np.zeros((4, 4)), positions, [0.0, 0.0])
    with pytest.raises(CkmsimError, match="maps_db"):
        distance_weighted_cross_ap(np.zeros((3, 4, 4)), positions, [0.0, 0.0])
    with pytest.raises(CkmsimError, match="target_position"):
        distance_weighted_cross_ap(maps, positions, [0.0, 0.0, 0.0])
    with pytest.raises(CkmsimError, match="ap_positions"):
        distance_weighted_cross_ap(maps, np.zeros((2, 4)), [0.0, 0.0])
    with pytest.raises(CkmsimError, match="beta"):
        distance_weighted_cross_ap(maps, positions, [0.0, 0.0], beta=-1.0)


def _on_ground(ckm, ground_m: float, bs_m):
    """The same CKM with its scene lifted by ``ground_m`` (a ``ground_m`` prior) and the BS at ``bs_m``."""
    grid_shape = ckm["building"].shape
    lifted = ckm.assign(ground_m=(("y", "x"), np.full(grid_shape, ground_m, dtype=np.float32)))
    lifted.attrs = {**ckm.attrs, "bs_position_m": list(bs_m)}
    return lifted


@pytest.mark.parametrize("method", [ThreeGppUmi, PathLossKriging])
def test_model_based_maps_follow_the_local_ground(method):
    """Lifting the whole scene (ground and BS) by 37 m is a translation: the map must not change. Ignoring
    the ground prior would put the UEs 37 m below their cells and change every distance."""
    truth = _truth(np.random.default_rng(1).normal(0.0, 4.0, (N, N)))
    flat = method().predict(uniform_subsample(truth, 3))["gain_db"].values
    lifted_bs = [BS_M[0], BS_M[1], BS_M[2] + 37.0]
    lifted_truth = _on_ground(truth, 37.0, lifted_bs)
    observation = uniform_subsample(lifted_truth, 3)
    assert observation.ground_m is not None and "ground_m" not in observation.values
    lifted = method().predict(observation)["gain_db"].values
    np.testing.assert_allclose(lifted, flat, atol=1e-4, equal_nan=True)
    ignored = method().predict(uniform_subsample(_on_ground(truth, 0.0, lifted_bs), 3))["gain_db"].values
    assert np.nanmax(np.abs(ignored - flat)) > 1.0


def test_pathloss_kriging_declines_an_area_within_a_metre_of_the_bs():
    """Every cell of a 0.6 m area 0.5 m under the BS is closer than the fit's 1 m clamp: one distance."""
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=6, num_y=6, cell_size_m=0.1)
    distance = np.linalg.norm(grid.cell_centers_m() - np.array([0.0, 0.0, 2.0]), axis=-1)
    assert distance.max() < 1.0
    tiny = make_ckm(grid, {"gain_db": -40.0 - 20.0 * np.log10(distance), "building": np.zeros((6, 6), bool)},
                    {"scene": "toy", "frequency_hz": 28e9, "bs_position_m": [0.0, 0.0, 2.0]})
    reason = PathLossKriging().unsupported_reason(uniform_subsample(tiny, 2))
    assert reason is not None and "1 m of the BS" in reason
    assert PathLossKriging().unsupported_reason(uniform_subsample(_truth(np.zeros((N, N))), 3)) is None

"""Snap decoding of E-SRResNet azimuths: brute-force neighbours, hand cases, the ULA beam gain's closed form."""

from __future__ import annotations

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg, wrap_deg
from ckmsim.models.esrresnet.snap import Snap, broadside_beam_gain, neighbour_azimuths, snap_azimuth, tune_snap


def test_neighbour_azimuths_match_a_brute_force_scan(rng):
    num_paths, num_y, num_x, radius = 2, 7, 9, 2
    az = rng.uniform(-180, 180, (num_paths, num_y, num_x))
    az[1, rng.random((num_y, num_x)) < 0.3] = np.nan  # an absent second path has no azimuth
    observed = rng.random((num_y, num_x)) < 0.4
    candidates = neighbour_azimuths(az, observed, radius)
    for y in range(num_y):
        for x in range(num_x):
            expected = sorted(az[p, j, i] for p in range(num_paths)
                              for j in range(max(0, y - radius), min(num_y, y + radius + 1))
                              for i in range(max(0, x - radius), min(num_x, x + radius + 1))
                              if observed[j, i] and np.isfinite(az[p, j, i]))
            got = candidates[:, y, x]
            np.testing.assert_array_equal(np.sort(got[np.isfinite(got)]), expected)


def test_snap_keeps_bicubic_for_small_corrections_and_snaps_large_ones_across_the_seam():
    bicubic = np.array([[10.0, 10.0, 10.0, 170.0, np.nan]])
    network = np.array([[12.0, 40.0, 100.0, -178.0, 30.0]])
    # candidates per cell: [2, 1, 5]
    candidates = np.array([[[11.0, 38.0, 10.0, 179.0, 31.0]], [[np.nan, -60.0, 20.0, np.nan, np.nan]]])
    snapped = snap_azimuth(network, bicubic, candidates, Snap(threshold_deg=5.0, tolerance_deg=8.0))
    # cell 0: a 2 deg correction is dropped; 1: nearest candidate 38 within 8 deg; 2: none within 8 deg of 100
    # -> the network's; 3: 179 is 3 deg from -178 across the seam; 4: bicubic has no angle -> nearest, 31
    np.testing.assert_allclose(snapped, [[10.0, 38.0, 100.0, 179.0, 31.0]])
    always = snap_azimuth(network, bicubic, candidates, Snap(threshold_deg=5.0))
    assert always[0, 2] == 20.0  # an unbounded tolerance always takes the nearest observed azimuth
    never = snap_azimuth(network, bicubic, candidates, Snap(threshold_deg=360.0))
    np.testing.assert_array_equal(never[:, :4], bicubic[:, :4])


def test_broadside_beam_gain_is_the_array_factor_of_a_half_wavelength_ula():
    num_ant = 16
    error_deg = np.array([0.0, 1.0, 3.0, 7.0, -20.0, np.degrees(np.arcsin(2.0 / num_ant))])
    # brute force: |a(0)^H a(delta)|^2 / N^2 with a_n(delta) = exp(j pi n sin delta)
    n = np.arange(num_ant)
    steering = np.exp(1j * np.pi * n[None] * np.sin(np.radians(error_deg))[:, None])
    expected = np.abs(steering.sum(axis=1)) ** 2 / num_ant ** 2
    np.testing.assert_allclose(broadside_beam_gain(error_deg, num_ant), expected, atol=1e-12)
    assert broadside_beam_gain(error_deg, num_ant)[-1] == pytest.approx(0.0, abs=1e-12)  # first null


def test_tune_snap_prefers_exact_neighbours_over_a_noisy_network_and_declines_when_nothing_qualifies(rng):
    num_cells = 4000
    truth = rng.uniform(-180, 180, num_cells)
    # bicubic: exact on 70 % of cells, 60 deg off on the rest (a blended regime boundary)
    wrong = rng.random(num_cells) < 0.3
    bicubic = wrap_deg(truth + np.where(wrong, 60.0, 0.0))
    # network: fixes the boundary cells to within 3 deg but adds 2 deg of noise everywhere
    network = wrap_deg(truth + rng.normal(0, 2.0, num_cells))
    # candidates: the true azimuth (an observed neighbour of the same regime) and one of the other regime
    candidates = np.stack([truth, wrap_deg(truth + 60.0)])
    snap, table = tune_snap(network, bicubic, candidates, truth, num_ant=64)
    assert snap is not None
    rows = {str(row["setting"]): row for row in table}
    chosen = next(row for row in table if row["setting"] == snap.to_dict())
    assert chosen["beam_gain"] > rows["bicubic"]["beam_gain"] > rows["network"]["beam_gain"]
    assert chosen["rmse_deg"] < 0.98 * rows["bicubic"]["rmse_deg"]
    snapped = snap_azimuth(network[None], bicubic[None], candidates[:, None], snap)[0]
    assert np.mean(np.abs(angle_difference_deg(snapped, truth)) < 0.5) > 0.95
    # a network worse than bicubic everywhere: no setting has a lower RMSE, nothing is chosen
    worse, _ = tune_snap(wrap_deg(truth + 90.0), truth.copy(), candidates[1:], truth)
    assert worse is None


def test_snap_settings_round_trip_through_json_and_check_their_values():
    snap = Snap(5.0)
    assert snap.to_dict() == {"threshold_deg": 5.0, "tolerance_deg": None, "radius_cells": 2}
    assert Snap.from_dict(snap.to_dict()) == snap and Snap.from_dict(None) is None
    with pytest.raises(CkmsimError, match="threshold_deg"):
        Snap(-1.0)
    with pytest.raises(CkmsimError, match="radius_cells"):
        Snap(5.0, radius_cells=0)
    with pytest.raises(CkmsimError, match="unknown|Unknown"):
        Snap.from_dict({"threshold_deg": 5.0, "tau": 1})

"""CSI predicted by a CKM (ckmsim.link.map_csi): exact on the true paths, eq. (10) on it, bad input, wrong angles."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import mimo_ofdm_channels, path_set, random_path_set
from ckmsim.link.codebook import dft_codebook
from ckmsim.link.csi_beamforming import CsiBeamformingScorer
from ckmsim.link.map_csi import MapCsiBeamformingScorer, map_csi, map_path_set, required_layers
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.ground_truth import path_layers

BUDGET = LinkBudget(num_subcarriers=16)
CARRIER_HZ = 6.765e9
BS_ARRAY = AntennaArray(num_cols=8)
UE_ARRAY = AntennaArray(num_cols=4)


def ckm_of(paths, frequency_hz=CARRIER_HZ):
    """The CKM whose per-path layers are all of ``paths`` at each UE's cell (path_layers, as the ground truth)."""
    rows, cols = paths["ue_row"].values, paths["ue_col"].values
    grid = Grid(0.0, 0.0, num_x=int(cols.max()) + 1, num_y=int(rows.max()) + 1, cell_size_m=1.0)
    layers = path_layers(paths, grid, paths.sizes["path"])
    maps = {"gain_db": np.zeros(grid.shape), "building": np.zeros(grid.shape, dtype=bool)}
    return make_ckm(grid, {**maps, **layers}, {"frequency_hz": frequency_hz})


def with_phase(paths, phase):
    """``paths`` with every path's gain turned to ``|a| exp(j phase)`` (``phase`` ``[num_ue, num_paths]``)."""
    a = np.abs(paths["a"].values) * np.exp(1j * phase)
    return path_set(a, paths["delay_s"].values, paths["dep_az_deg"].values, paths["dep_el_deg"].values,
                    paths["arr_az_deg"].values, paths["arr_el_deg"].values, ue_row=paths["ue_row"].values,
                    ue_col=paths["ue_col"].values)


def geometric(paths, carrier_hz=CARRIER_HZ):
    """``paths`` whose carrier phases are the propagation phases -2 pi f_c tau (the map's assumption)."""
    return with_phase(paths, -2 * np.pi * carrier_hz * paths["delay_s"].values)


def cells(paths):
    return paths["ue_row"].values, paths["ue_col"].values


def relative_error(h, reference):
    return np.linalg.norm(h - reference) / np.linalg.norm(reference)


@pytest.mark.parametrize("ue_array", [UE_ARRAY, AntennaArray(num_cols=2, num_rows=2), AntennaArray(num_cols=1)])
def test_map_of_the_true_paths_reproduces_the_true_csi(ue_array):
    """With the phase assumption true (geometric phases), every path kept: H_map = H_true up to float32 layers."""
    paths = geometric(random_path_set(12, 3, seed=1))
    h_true = mimo_ofdm_channels(paths, BS_ARRAY, ue_array, BUDGET)
    h_map = map_csi(ckm_of(paths), cells(paths), BS_ARRAY, ue_array, BUDGET)
    assert h_map.shape == (12, BUDGET.num_subcarriers, ue_array.num_ant, BS_ARRAY.num_ant)
    assert h_map.dtype == np.complex64
    # float32 delays turn the carrier phase by up to 2 pi f_c * 6e-8 tau ~ 3e-3 rad
    assert relative_error(h_map, h_true) < 1e-2
    # Swapping the two ends (BS array on the UE-side angles) would not reproduce it
    swapped = with_phase(paths, np.angle(paths["a"].values))
    swapped["dep_az_deg"], swapped["arr_az_deg"] = paths["arr_az_deg"], paths["dep_az_deg"]
    if ue_array.num_ant > 1:
        assert relative_error(map_csi(ckm_of(swapped), cells(paths), BS_ARRAY, ue_array, BUDGET), h_true) > 0.5


def test_single_path_csi_is_exact_in_magnitude_and_picks_the_same_pair(rng):
    """A single path's true phase (any value, reflections included) is a common factor: |H_map| = |H_true|."""
    paths = random_path_set(32, 1, seed=2)
    paths = with_phase(paths, rng.uniform(-np.pi, np.pi, size=(32, 1)))
    h_true = mimo_ofdm_channels(paths, BS_ARRAY, UE_ARRAY, BUDGET)
    h_map = map_csi(ckm_of(paths), cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)
    np.testing.assert_allclose(np.abs(h_map), np.abs(h_true), rtol=1e-4, atol=1e-6 * np.abs(h_true).max())
    scorer = CsiBeamformingScorer(h_true, BUDGET.snr_scale, dft_codebook(BS_ARRAY), dft_codebook(UE_ARRAY),
                                  precision="double")
    score = scorer.rates(h_map)
    np.testing.assert_array_equal(score.bs_beam, scorer.perfect_bs_beam)
    np.testing.assert_array_equal(score.ue_beam, scorer.perfect_ue_beam)


def test_ground_truth_map_of_a_los_channel_earns_perfect_csi(rng):
    """One LoS path per UE, the map its own ground truth: eq. (11) equals perfect CSI, times (1 - rho)."""
    paths = random_path_set(24, 1, seed=3)
    paths = with_phase(paths, rng.uniform(-np.pi, np.pi, size=(24, 1)))
    truth = ckm_of(paths)
    for rho in (0.0, 0.125):
        scorer = MapCsiBeamformingScorer(paths, BS_ARRAY, UE_ARRAY, BUDGET, CARRIER_HZ, pilot_overhead=rho)
        perfect = scorer.scorer.perfect_csi_rates()
        assert np.all(perfect > 0)
        np.testing.assert_allclose(scorer.rates(truth).rate_bps_hz, (1 - rho) * perfect, rtol=1e-5)
        np.testing.assert_allclose(scorer.rates(truth).gain_loss_db, 0.0, atol=1e-4)


def test_paths_at_the_floor_or_with_nan_angles_contribute_nothing():
    paths = geometric(random_path_set(9, 2, seed=4))
    truth = ckm_of(paths)
    single = ckm_of(paths.isel(path=[0]))
    expected = map_csi(single, cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)
    floored = truth.copy(deep=True)
    floored["path_gain_db"][1] = GAIN_FLOOR_DB
    nan_angle = truth.copy(deep=True)
    nan_angle["aod_el_deg"][1] = np.nan
    for ckm in (floored, nan_angle):
        np.testing.assert_allclose(map_csi(ckm, cells(paths), BS_ARRAY, UE_ARRAY, BUDGET), expected, rtol=1e-6)
    # A cell without any usable path has zero CSI; the other cells are untouched
    partial = truth.copy(deep=True)
    rows, cols = cells(paths)
    partial["toa_s"][:, rows[0], cols[0]] = np.nan
    h = map_csi(partial, cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)
    assert not h[0].any()
    np.testing.assert_array_equal(h[1:], map_csi(truth, cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)[1:])


def test_single_antenna_ue_needs_no_ue_angles():
    paths = geometric(random_path_set(6, 2, seed=5))
    one = AntennaArray(num_cols=1)
    assert required_layers(one) == ("path_gain_db", "aoa_az_deg", "aoa_el_deg", "toa_s")
    truth = ckm_of(paths)
    h = map_csi(truth.drop_vars(["aod_az_deg", "aod_el_deg"]), cells(paths), BS_ARRAY, one, BUDGET)
    np.testing.assert_array_equal(h, map_csi(truth, cells(paths), BS_ARRAY, one, BUDGET))
    assert h.shape == (6, BUDGET.num_subcarriers, 1, BS_ARRAY.num_ant)


def test_bad_input_fails_with_a_clear_message():
    paths = geometric(random_path_set(4, 2, seed=6))
    truth = ckm_of(paths)
    with pytest.raises(CkmsimError, match=r"lacks \['toa_s', 'aod_az_deg'\]"):
        map_csi(truth.drop_vars(["aod_az_deg", "toa_s"]), cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)
    empty = truth.copy(deep=True)
    for name in ("aoa_az_deg", "aoa_el_deg", "aod_az_deg", "aod_el_deg", "toa_s"):
        empty[name][:] = np.nan
    with pytest.raises(CkmsimError, match="no usable path"):
        map_csi(empty, cells(paths), BS_ARRAY, UE_ARRAY, BUDGET)
    rows, cols = cells(paths)
    with pytest.raises(CkmsimError, match=r"ue_cells must be a pair"):
        map_csi(truth, (rows[:, None], cols[:, None]), BS_ARRAY, UE_ARRAY, BUDGET)
    with pytest.raises(CkmsimError, match=r"ue_cells must be a pair"):
        map_csi(truth, (rows, cols[:-1]), BS_ARRAY, UE_ARRAY, BUDGET)
    with pytest.raises(CkmsimError, match=r"must lie on the CKM's 2 x 2 grid"):
        map_csi(truth, (rows + 5, cols), BS_ARRAY, UE_ARRAY, BUDGET)
    no_carrier = truth.copy()
    no_carrier.attrs = {k: v for k, v in truth.attrs.items() if k != "frequency_hz"}
    with pytest.raises(CkmsimError, match="carrier frequency"):
        map_path_set(no_carrier, cells(paths))
    assert map_path_set(no_carrier, cells(paths), carrier_hz=CARRIER_HZ).sizes["ue"] == 4
    with pytest.raises(CkmsimError, match="pilot_overhead"):
        MapCsiBeamformingScorer(paths, BS_ARRAY, UE_ARRAY, BUDGET, CARRIER_HZ, pilot_overhead=1.5)


def test_wrong_azimuths_score_lower_than_the_true_map():
    """A map whose azimuths at both ends are turned by 90 deg points the beams away: lower mean rate."""
    paths = random_path_set(64, 3, seed=7)
    truth = ckm_of(paths)
    rotated = truth.copy(deep=True)
    for name in ("aoa_az_deg", "aod_az_deg"):
        rotated[name] = (rotated[name] + 270.0) % 360.0 - 180.0
    scorer = MapCsiBeamformingScorer(paths, BS_ARRAY, UE_ARRAY, BUDGET, CARRIER_HZ)
    true_rate = scorer.rates(truth).rate_bps_hz
    rotated_rate = scorer.rates(rotated).rate_bps_hz
    perfect = scorer.scorer.perfect_csi_rates()
    assert rotated_rate.mean() < 0.8 * true_rate.mean()
    assert true_rate.mean() <= (1 - scorer.pilot_overhead) * perfect.mean() + 1e-9
    assert np.all(scorer.rates(rotated).gain_loss_db >= -1e-6)


def test_from_beam_selection_reuses_the_single_antenna_channels():
    """A single-antenna UE's true CSI is the beam-selection scorer's vector (reciprocity): same scores."""
    from ckmsim.link.score import BeamSelectionScorer

    paths = random_path_set(10, 4, seed=8)
    one = AntennaArray(num_cols=1)
    reused = MapCsiBeamformingScorer.from_beam_selection(BeamSelectionScorer(paths, BS_ARRAY, BUDGET), one,
                                                         CARRIER_HZ)
    direct = MapCsiBeamformingScorer(paths, BS_ARRAY, one, BUDGET, CARRIER_HZ)
    h = direct.scorer.h_true
    np.testing.assert_allclose(reused.scorer.h_true, h, rtol=1e-4, atol=1e-5 * np.abs(h).max())
    truth = ckm_of(paths)
    np.testing.assert_allclose(reused.rates(truth).rate_bps_hz, direct.rates(truth).rate_bps_hz, rtol=1e-5)
    with pytest.raises(CkmsimError, match="h_true must be the CSI of the 10 served UEs"):
        MapCsiBeamformingScorer(paths, BS_ARRAY, one, BUDGET, CARRIER_HZ, h_true=h[:5])


def test_reported_cells_true_cell_at_zero_error_nearest_open_cell_and_spread():
    """sigma = 0 reads the UE's own cell; a report on a building moves to the nearest open cell, one outside
    the map to its edge; with sigma = 4 m on 2 m cells the read cell's displacement has the Rayleigh mean
    sigma * sqrt(pi / 2) ~ 5.0 m (within cell quantisation)."""
    from ckmsim.link.map_csi import reported_cells

    grid = Grid(0.0, 0.0, 40, 40, 2.0)
    building = np.zeros((40, 40), bool)
    building[20:23, 20:23] = True
    ckm = make_ckm(grid, {"gain_db": np.where(building, np.nan, -80.0), "building": building})
    centers = grid.cell_centers_m()
    true = np.array([centers[5, 7, :2], centers[30, 2, :2]])
    np.testing.assert_array_equal(reported_cells(ckm, true, 0.0, np.random.default_rng(0)), [[5, 7], [30, 2]])
    on_building = np.array([centers[21, 20, :2], [1e3, -1e3]])
    cells = reported_cells(ckm, on_building, 0.0, np.random.default_rng(0))
    np.testing.assert_array_equal(cells[0], [21, 19])
    np.testing.assert_array_equal(cells[1], [0, 39])
    many = np.repeat(centers[10, 10, :2][None], 4000, axis=0)
    cells = reported_cells(ckm, many, 4.0, np.random.default_rng(1))
    displacement = 2.0 * np.linalg.norm(cells - [10, 10], axis=1)
    assert displacement.mean() == pytest.approx(4.0 * np.sqrt(np.pi / 2), rel=0.06)
    assert not building[cells[:, 0], cells[:, 1]].any()
    with pytest.raises(CkmsimError, match="sigma_m"):
        reported_cells(ckm, true, -1.0, np.random.default_rng(0))
    with pytest.raises(CkmsimError, match="positions_m"):
        reported_cells(ckm, np.zeros(3), 1.0, np.random.default_rng(0))

"""DFT codebook, beam gains and rates against closed forms (Fejer kernel), and against a second, loop-by-loop
implementation of the channel, the codebook and the SCM (ULA and UPA)."""

import numpy as np
import pytest
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.beams import (beamforming_gains, mean_beam_gains, precoder_rates, rates_all_beams,
                               select_beams_from_scm)
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import mimo_ofdm_channels, ofdm_channels, path_set, random_path_set
from ckmsim.link.codebook import dft_beam_spatial_frequencies, dft_codebook
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.grid import Grid
from ckmsim.maps.scm import scm_from_paths


def fejer_gain(num_ant: int, delta_u: np.ndarray) -> np.ndarray:
    """|a(u)^H f_k|^2 of a half-wavelength ULA and a unit-norm DFT beam, u - u_k = delta_u."""
    x = np.pi * delta_u / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (np.sin(num_ant * x) / np.sin(x)) ** 2 / num_ant
    return np.where(np.abs(np.sin(x)) < 1e-12, num_ant, g)


def test_codebook_is_unitary_dft():
    codebook = dft_codebook(AntennaArray(num_cols=16))
    assert codebook.shape == (16, 16)
    np.testing.assert_allclose(codebook @ codebook.conj().T, np.eye(16), atol=1e-12)
    assert dft_codebook(AntennaArray(num_cols=8), oversampling=4).shape == (32, 8)


@pytest.mark.parametrize("num_ant", [8, 32])
def test_single_path_beam_gain_closed_form(num_ant, rng):
    """A single LoS path: the DFT beam gain is the Fejer kernel of the spatial-frequency offset."""
    array = AntennaArray(num_cols=num_ant)
    codebook = dft_codebook(array, oversampling=2)
    az = rng.uniform(-180, 180, size=20)
    el = rng.uniform(-20, 20, size=20)
    # [20, 1 subcarrier, num_ant]: unit-gain single path
    h = array.steering_vectors(az, el)[:, None, :]
    gains = beamforming_gains(h, codebook)[:, 0, :]
    u = np.cos(np.radians(el)) * np.sin(np.radians(az))  # cos of the angle to the array axis (y)
    u_beams = 2 * np.arange(codebook.shape[0]) / codebook.shape[0]  # beam m points at u = 2m/(N O) mod 2
    expected = fejer_gain(num_ant, u[:, None] - u_beams[None, :])
    np.testing.assert_allclose(gains, expected, rtol=1e-9, atol=1e-9)
    # Selecting from the path's SCM picks the beam with the largest closed-form gain
    scm = scm_from_paths(np.zeros((20, 1)), az[:, None], el[:, None], array)
    np.testing.assert_array_equal(select_beams_from_scm(scm, codebook), np.argmax(expected, axis=1))


def test_rate_closed_form():
    """log2(1 + SNR |f^H h|^2) for a flat single-path channel hit by its own beam: SNR * N."""
    array = AntennaArray(num_cols=8)
    codebook = dft_codebook(array)
    budget = LinkBudget(tx_power_dbm=0.0, bandwidth_hz=1e6, noise_figure_db=0.0)
    gain = 10 ** (-(0.0 - budget.noise_power_dbm) / 10)  # channel power making SNR = 1 before beamforming
    h = np.sqrt(gain) * codebook[3] * np.sqrt(8)
    rates = rates_all_beams(np.tile(h, (1, 4, 1)), codebook, budget.snr_scale)
    np.testing.assert_allclose(rates[0, 3], np.log2(1 + 8.0), rtol=1e-9)
    np.testing.assert_allclose(np.delete(rates[0], 3), 0.0, atol=1e-12)


def test_budget_noise_power():
    budget = LinkBudget(tx_power_dbm=30, bandwidth_hz=100e6, noise_figure_db=7)
    assert budget.noise_power_dbm == pytest.approx(-174 + 80 + 7)
    assert budget.snr_scale == pytest.approx(10 ** ((30 + 87) / 10))


# ------------------------------------------------------------------------------------------------------
# A second implementation, written out in plain numpy loops from the formulas, with no ckmsim code:
# half-wavelength ULA along y centred on the BS, [a(u)]_n = exp(j pi (n - (N-1)/2) u) with
# u = cos(el) sin(az); subcarriers f_k = (k - floor(K/2)) B/K; h_k = sum_l a_l exp(-j 2 pi f_k tau_l) a(u_l);
# DFT beam m: exp(j pi n 2m/N) / sqrt(N), pointing at u = 2m/N (mod 2).
# ------------------------------------------------------------------------------------------------------

def ula_response(num_ant: int, az_deg: float, el_deg: float) -> np.ndarray:
    u = np.cos(np.radians(el_deg)) * np.sin(np.radians(az_deg))
    return np.exp(1j * np.pi * (np.arange(num_ant) - (num_ant - 1) / 2) * u)


def loop_channel(paths: xr.Dataset, num_ant: int, budget: LinkBudget) -> np.ndarray:
    """[num_ue, K, N] true channel, one UE, subcarrier and path at a time."""
    num_ue, num_paths = paths.sizes["ue"], paths.sizes["path"]
    freqs = (np.arange(budget.num_subcarriers) - budget.num_subcarriers // 2) * budget.subcarrier_spacing_hz
    h = np.zeros((num_ue, budget.num_subcarriers, num_ant), dtype=np.complex128)
    for u in range(num_ue):
        for l in range(num_paths):
            if not paths["valid"].values[u, l]:
                continue
            steering = ula_response(num_ant, paths["dep_az_deg"].values[u, l], paths["dep_el_deg"].values[u, l])
            for k, f in enumerate(freqs):
                h[u, k] += paths["a"].values[u, l] * np.exp(-2j * np.pi * f * paths["delay_s"].values[u, l]) * steering
    return h


def loop_dft_beams(num_ant: int) -> list[np.ndarray]:
    return [np.exp(1j * np.pi * np.arange(num_ant) * 2 * m / num_ant) / np.sqrt(num_ant) for m in range(num_ant)]


def test_perfect_csi_and_map_choices_equal_a_brute_force_over_the_codebook(rng):
    """Perfect CSI is the best beam found by trying every DFT beam on the true channel (written out in loops);
    a map's rate is the rate, on that channel, of the beam maximising its own predicted SCM's gain."""
    num_ue, num_paths, num_ant = 12, 3, 8
    paths = random_path_set(num_ue, num_paths, seed=4, gain_db_range=(-105.0, -85.0))
    budget = LinkBudget(num_subcarriers=6)
    scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=num_ant), budget)
    h = loop_channel(paths, num_ant, budget)
    beams = loop_dft_beams(num_ant)
    snr = budget.snr_scale
    # [num_ue, num_beams] rate of every beam, brute force
    table = np.array([[np.mean([np.log2(1 + snr * abs(np.vdot(f, h[u, k])) ** 2) for k in range(h.shape[1])])
                       for f in beams] for u in range(num_ue)])
    np.testing.assert_allclose(scorer.perfect_csi_rates(), table.max(axis=1), rtol=1e-5)
    shape = (2, int(paths["ue_row"].max()) + 1, int(paths["ue_col"].max()) + 1)
    rows, cols = paths["ue_row"].values, paths["ue_col"].values
    for trial in range(3):
        ckm = xr.Dataset({"path_gain_db": (("path", "y", "x"), rng.uniform(-110, -80, shape)),
                          "aoa_az_deg": (("path", "y", "x"), rng.uniform(-90, 90, shape)),
                          "aoa_el_deg": (("path", "y", "x"), rng.uniform(-20, 10, shape))})
        expected_beam = np.empty(num_ue, dtype=int)
        for u in range(num_ue):
            scm = np.zeros((num_ant, num_ant), dtype=np.complex128)
            for l in range(2):
                a = ula_response(num_ant, ckm["aoa_az_deg"].values[l, rows[u], cols[u]],
                                 ckm["aoa_el_deg"].values[l, rows[u], cols[u]])
                scm += 10 ** (ckm["path_gain_db"].values[l, rows[u], cols[u]] / 10) * np.outer(a, a.conj())
            expected_beam[u] = int(np.argmax([np.vdot(f, scm @ f).real for f in beams]))
        score = scorer.rates(ckm)
        np.testing.assert_array_equal(score.beam, expected_beam)
        np.testing.assert_allclose(score.rate_bps_hz, table[np.arange(num_ue), expected_beam], rtol=1e-5)


def test_single_off_grid_path_with_a_wrong_map_earns_the_fejer_closed_form(rng):
    """One LoS path per UE off the DFT grid, |g|^2 = -100 dB: perfect CSI earns log2(1 + SNR |g|^2 max_m F(u - u_m)),
    a map whose azimuth is off by 10 deg picks m* = argmax_m F(u_map - u_m) and earns log2(1 + SNR |g|^2 F(u - u_m*)),
    with F the Fejer kernel (closed form, no channel code)."""
    num_ue, num_ant, gain_db = 16, 16, -100.0
    az = rng.uniform(-60, 60, size=num_ue)
    el = rng.uniform(-15, 5, size=num_ue)
    paths = path_set(np.full((num_ue, 1), 10 ** (gain_db / 20) * np.exp(1j)), np.full((num_ue, 1), 3e-7),
                     az[:, None], el[:, None], ue_row=np.arange(num_ue) // 4, ue_col=np.arange(num_ue) % 4)
    budget = LinkBudget(num_subcarriers=4)
    scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=num_ant), budget)
    u_beams = 2 * np.arange(num_ant) / num_ant
    u_true = np.cos(np.radians(el)) * np.sin(np.radians(az))
    gain = fejer_gain(num_ant, u_true[:, None] - u_beams[None, :])
    snr = budget.snr_scale * 10 ** (gain_db / 10)
    np.testing.assert_allclose(scorer.perfect_csi_rates(), np.log2(1 + snr * gain.max(axis=1)), rtol=1e-5)
    wrong = truth_ckm(paths, 1)
    wrong["aoa_az_deg"] = wrong["aoa_az_deg"] + 10.0
    u_map = np.cos(np.radians(el)) * np.sin(np.radians(az + 10.0))
    chosen = np.argmax(fejer_gain(num_ant, u_map[:, None] - u_beams[None, :]), axis=1)
    score = scorer.rates(wrong)
    np.testing.assert_array_equal(score.beam, chosen)
    np.testing.assert_allclose(score.rate_bps_hz, np.log2(1 + snr * gain[np.arange(num_ue), chosen]), rtol=1e-5)
    # 10 deg is several beamwidths of a 16-element array: most UEs lose, and none gains over perfect CSI
    assert np.mean(score.rate_bps_hz < scorer.perfect_csi_rates() - 0.1) > 0.5


def truth_ckm(paths: xr.Dataset, num_map_paths: int) -> xr.Dataset:
    """The per-path layers a perfect CKM holds at the UEs' cells (the ground-truth builder's own code)."""
    from ckmsim.raytrace.ground_truth import path_layers

    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=int(paths["ue_col"].max()) + 1,
                num_y=int(paths["ue_row"].max()) + 1, cell_size_m=1.0)
    layers = path_layers(paths, grid, num_map_paths)
    names = ("path_gain_db", "aoa_az_deg", "aoa_el_deg")
    return xr.Dataset({name: (("path", "y", "x"), layers[name]) for name in names})


def test_kernels_agree_across_batches_and_precisions(rng):
    h = (rng.normal(size=(37, 8, 16)) + 1j * rng.normal(size=(37, 8, 16))) * 1e-5
    codebook = dft_codebook(AntennaArray(num_cols=8, num_rows=2), oversampling=2)
    snr = 1e10
    reference = np.log2(1 + snr * beamforming_gains(h, codebook)).mean(axis=1)
    for batch in (1, 5, None):
        np.testing.assert_allclose(rates_all_beams(h, codebook, snr, ues_per_batch=batch), reference, rtol=1e-12)
    np.testing.assert_allclose(rates_all_beams(h, codebook, snr, precision="single"), reference, rtol=1e-5)
    np.testing.assert_allclose(mean_beam_gains(h, codebook, ues_per_batch=4),
                               beamforming_gains(h, codebook).mean(axis=1), rtol=1e-12)
    # One precoder per UE: the rate of beam 3 for everybody is column 3 of the all-beam rates
    np.testing.assert_allclose(precoder_rates(h, np.tile(codebook[3], (37, 1)), snr), reference[:, 3], rtol=1e-12)
    with pytest.raises(CkmsimError, match="precision="):
        rates_all_beams(h, codebook, snr, precision="half")


def test_select_from_scm_maximises_the_quadratic_form(rng):
    x = rng.normal(size=(20, 16, 5)) + 1j * rng.normal(size=(20, 16, 5))
    scm = x @ np.conj(np.swapaxes(x, -1, -2))
    codebook = dft_codebook(AntennaArray(num_cols=4, num_rows=4), oversampling=2)
    expected = np.argmax(np.einsum("bm,umn,bn->ub", codebook.conj(), scm, codebook).real, axis=1)
    np.testing.assert_array_equal(select_beams_from_scm(scm, codebook, ues_per_batch=3), expected)
    np.testing.assert_array_equal(select_beams_from_scm(np.zeros((2, 16, 16), complex), codebook), [0, 0])


def test_upa_channels_from_sionna_equal_the_mimo_channel_row(rng):
    """ofdm_channels (Sionna's cir_to_ofdm_channel) and mimo_ofdm_channels (numpy) agree on a UPA."""
    paths = random_path_set(6, 3, rng)
    array = AntennaArray(num_cols=4, num_rows=2)
    budget = LinkBudget(num_subcarriers=8)
    vector = ofdm_channels(paths, array, budget)
    matrix = mimo_ofdm_channels(paths, array, AntennaArray(num_cols=1), budget)
    assert matrix.shape == (6, 8, 1, 8)
    scale = np.abs(vector).max()
    np.testing.assert_allclose(matrix[:, :, 0, :] / scale, vector / scale, atol=1e-5)


@pytest.mark.parametrize("rows, cols, oversampling", [(4, 4, 1), (2, 8, (2, 1)), (1, 16, 2)])
def test_upa_beam_selection_of_single_on_grid_paths_reaches_the_closed_form(rows, cols, oversampling):
    """One path per UE towards a visible beam of the grid: the truth map picks it, rate log2(1 + SNR N g)."""
    array = AntennaArray(num_cols=cols, num_rows=rows)
    u = dft_beam_spatial_frequencies(array, oversampling)
    visible = np.nonzero((u ** 2).sum(axis=1) < 0.9)[0][:12]
    el = -np.degrees(np.arcsin(u[visible, 0]))
    az = np.degrees(np.arcsin(u[visible, 1] / np.cos(np.radians(el))))
    num_ue, gain_db = len(visible), -100.0
    paths = path_set(np.full((num_ue, 1), 10 ** (gain_db / 20)), np.full((num_ue, 1), 1e-7), az[:, None], el[:, None],
                     ue_row=np.arange(num_ue) // 4, ue_col=np.arange(num_ue) % 4)
    budget = LinkBudget(num_subcarriers=4)
    scorer = BeamSelectionScorer(paths, array, budget, oversampling)
    assert scorer.codebook.shape == (len(u), rows * cols)
    score = scorer.rates(truth_ckm(paths, 1))
    closed_form = np.log2(1 + budget.snr_scale * rows * cols * 10 ** (gain_db / 10))
    np.testing.assert_allclose(score.rate_bps_hz, closed_form, rtol=1e-6)
    np.testing.assert_allclose(scorer.perfect_csi_rates(), closed_form, rtol=1e-6)
    np.testing.assert_array_equal(score.beam, visible)

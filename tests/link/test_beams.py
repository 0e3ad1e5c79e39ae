"""DFT codebook, beam gains and rates against closed forms; perfect CSI bounds every map's choice."""

import numpy as np
import pytest
import xarray as xr

from ckmsim.link.beams import beamforming_gains, rates_all_beams, select_beams_from_scm
from ckmsim.link.budget import LinkBudget
from ckmsim.link.codebook import dft_codebook
from ckmsim.maps.antenna_array import AntennaArray
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


def test_perfect_csi_bounds_every_map(rng):
    """Perfect CSI picks the best beam on the true channel: no map-driven choice can beat it on any UE."""
    from ckmsim.link.score import BeamSelectionScorer

    num_ue, num_paths = 40, 4
    valid = np.ones((num_ue, num_paths), dtype=bool)
    valid[::7, 2:] = False
    a = (rng.normal(size=(num_ue, num_paths)) + 1j * rng.normal(size=(num_ue, num_paths))) * 1e-5
    paths = xr.Dataset(
        {"a": (("ue", "path"), np.where(valid, a, 0).astype(np.complex64)),
         "delay_s": (("ue", "path"), np.where(valid, rng.uniform(1e-7, 5e-7, (num_ue, num_paths)), np.nan)),
         "dep_az_deg": (("ue", "path"), np.where(valid, rng.uniform(-180, 180, (num_ue, num_paths)), np.nan)),
         "dep_el_deg": (("ue", "path"), np.where(valid, rng.uniform(-30, 10, (num_ue, num_paths)), np.nan)),
         "los": (("ue", "path"), np.zeros((num_ue, num_paths), bool)),
         "valid": (("ue", "path"), valid)},
        coords={"ue_row": ("ue", np.arange(num_ue) // 8), "ue_col": ("ue", np.arange(num_ue) % 8)})
    scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=16), LinkBudget(num_subcarriers=8))
    perfect = scorer.perfect_csi_rates()
    for trial in range(5):
        # A random "map": random gains and angles at every cell
        shape = (2, 5, 8)
        ckm = xr.Dataset({"path_gain_db": (("path", "y", "x"), rng.uniform(-120, -80, shape)),
                          "aoa_az_deg": (("path", "y", "x"), rng.uniform(-180, 180, shape)),
                          "aoa_el_deg": (("path", "y", "x"), rng.uniform(-30, 10, shape))})
        rates = scorer.rates(ckm).rate_bps_hz
        assert np.all(rates <= perfect + 1e-12)
    assert perfect.mean() > rates.mean()

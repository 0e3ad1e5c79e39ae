"""CSI-based beamforming (LAD-CKM eqs. (10)-(11)): closed forms, brute force, bounds and references."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.link.beams import mean_beam_gains
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import mimo_ofdm_channels, path_set, random_path_set
from ckmsim.link.codebook import dft_beam_spatial_frequencies, dft_codebook
from ckmsim.link.csi_beamforming import (CsiBeamformingScorer, effective_rates, pair_gains, select_beam_pairs,
                                         sweep_overhead)
from ckmsim.maps.antenna_array import AntennaArray

BUDGET = LinkBudget(num_subcarriers=8)


def on_grid_direction(array: AntennaArray, beam: int):
    """(az, el) [deg] at which DFT beam ``beam`` of ``array`` has its full gain."""
    u_row, u_col = dft_beam_spatial_frequencies(array)[beam]
    el = -np.degrees(np.arcsin(u_row))
    return np.degrees(np.arcsin(u_col / np.cos(np.radians(el)))), el


def noisy(h: np.ndarray, estimation_snr_db: float, rng) -> np.ndarray:
    """``h`` plus complex Gaussian noise at the given per-UE estimation SNR (LAD-CKM's ESNR)."""
    power = np.mean(np.abs(h) ** 2, axis=(1, 2, 3), keepdims=True) * 10 ** (-estimation_snr_db / 10)
    noise = rng.normal(size=h.shape) + 1j * rng.normal(size=h.shape)
    return (h + np.sqrt(power / 2) * noise).astype(np.complex64)


@pytest.mark.parametrize("bs_shape, ue_shape", [((4, 4), (1, 1)), ((2, 4), (1, 2)), ((4, 4), (2, 2))])
def test_single_los_path_aligned_gives_the_closed_form(bs_shape, ue_shape):
    """H = alpha a_UE a_BS^T with both directions on the grids: R = (1 - rho) log2(1 + gamma N_t N_r |alpha|^2)."""
    bs_array = AntennaArray(num_cols=bs_shape[1], num_rows=bs_shape[0])
    ue_array = AntennaArray(num_cols=ue_shape[1], num_rows=ue_shape[0])
    dep_az, dep_el = on_grid_direction(bs_array, 1)
    arr_az, arr_el = on_grid_direction(ue_array, min(1, ue_array.num_ant - 1))  # endfire for a 2-element row
    gain_db = -100.0
    paths = path_set(np.full((1, 1), 10 ** (gain_db / 20) * np.exp(0.7j)), [[2e-7]], [[dep_az]], [[dep_el]],
                     [[arr_az]], [[arr_el]])
    h = mimo_ofdm_channels(paths, bs_array, ue_array, BUDGET)
    ue_codebook = dft_codebook(ue_array) if ue_array.num_ant > 1 else None
    scorer = CsiBeamformingScorer(h, BUDGET.snr_scale, dft_codebook(bs_array), ue_codebook, precision="double")
    snr = BUDGET.snr_scale * bs_array.num_ant * ue_array.num_ant * 10 ** (gain_db / 10)
    np.testing.assert_allclose(scorer.perfect_csi_rates(), np.log2(1 + snr), rtol=1e-6)
    score = scorer.rates(h, pilot_overhead=0.125)
    np.testing.assert_allclose(score.rate_bps_hz, 0.875 * np.log2(1 + snr), rtol=1e-6)
    np.testing.assert_allclose(score.effective_snr_db, 10 * np.log10(snr), atol=1e-4)
    np.testing.assert_array_equal(score.gain_loss_db, 0.0)
    # No codebook can beat the matched pair of a rank-one channel
    np.testing.assert_allclose(scorer.unconstrained_rates(), np.log2(1 + snr), rtol=1e-6)


def test_vectorised_search_equals_brute_force(rng):
    h = (rng.normal(size=(5, 4, 2, 8)) + 1j * rng.normal(size=(5, 4, 2, 8))).astype(np.complex128)
    bs_codebook = dft_codebook(AntennaArray(num_cols=4, num_rows=2), oversampling=2)
    ue_codebook = dft_codebook(AntennaArray(num_cols=2), oversampling=2)
    expected = np.zeros((5, len(ue_codebook), len(bs_codebook)))
    for u in range(5):
        for s, w in enumerate(ue_codebook):
            for b, f in enumerate(bs_codebook):
                expected[u, s, b] = np.mean([abs(w.conj() @ h[u, k] @ f) ** 2 for k in range(4)])
    for batch in (1, 2, None):
        np.testing.assert_allclose(pair_gains(h, bs_codebook, ue_codebook, ues_per_batch=batch), expected, rtol=1e-12)
    np.testing.assert_allclose(pair_gains(h.astype(np.complex64), bs_codebook, ue_codebook), expected, rtol=1e-5)
    bs_beam, ue_beam = select_beam_pairs(h, bs_codebook, ue_codebook)
    flat = np.argmax(expected.reshape(5, -1), axis=1)
    np.testing.assert_array_equal(ue_beam * len(bs_codebook) + bs_beam, flat)
    # Eq. (11) for the chosen pairs, written out
    scorer = CsiBeamformingScorer(h, 3.0, bs_codebook, ue_codebook)
    gains = np.array([[abs(ue_codebook[ue_beam[u]].conj() @ h[u, k] @ bs_codebook[bs_beam[u]]) ** 2 for k in range(4)]
                      for u in range(5)])
    np.testing.assert_allclose(scorer.rates(h, 0.25).rate_bps_hz, 0.75 * np.log2(1 + 3.0 * gains).mean(axis=1),
                               rtol=1e-12)


def test_single_ue_antenna_matches_the_beam_convention(rng):
    """|H f|^2 with H the downlink row equals |(f^*)^H h|^2 of ckmsim.link.beams on the same vector."""
    h = rng.normal(size=(6, 5, 1, 8)) + 1j * rng.normal(size=(6, 5, 1, 8))
    codebook = dft_codebook(AntennaArray(num_cols=8), oversampling=2)
    np.testing.assert_allclose(pair_gains(h, codebook, np.ones((1, 1)))[:, 0, :],
                               mean_beam_gains(h[:, :, 0, :], codebook.conj()), rtol=1e-12)


@pytest.fixture(scope="module")
def multipath():
    """True downlink CSI of 200 UEs, 5 random paths each, 4x4 BS UPA and 1x2 UE ULA, and the scorer."""
    paths = random_path_set(200, 5, seed=11)
    h = mimo_ofdm_channels(paths, AntennaArray(num_cols=4, num_rows=4), AntennaArray(num_cols=2), BUDGET)
    scorer = CsiBeamformingScorer(h, BUDGET.snr_scale, dft_codebook(AntennaArray(num_cols=4, num_rows=4)),
                                  dft_codebook(AntennaArray(num_cols=2)))
    return h, scorer


@pytest.mark.parametrize("rho", [0.0, 0.125])
def test_two_orthogonal_on_grid_paths_give_closed_forms(rho):
    """Two paths on distinct, orthogonal DFT beams of the BS (and UE) grid, gains g1 > g2: the best pair
    collects N_t N_r g1 on every subcarrier, whatever the delays (the other path is nulled), so perfect CSI
    earns log2(1 + gamma N_t N_r g1); a prediction that swaps the two powers picks path 2's pair and earns
    (1 - rho) log2(1 + gamma N_t N_r g2), with a gain loss of exactly g1 / g2."""
    bs_array, ue_array = AntennaArray(num_cols=8), AntennaArray(num_cols=2)
    (dep1, dep1_el), (dep2, dep2_el) = on_grid_direction(bs_array, 1), on_grid_direction(bs_array, 3)
    (arr1, arr1_el), (arr2, arr2_el) = on_grid_direction(ue_array, 0), on_grid_direction(ue_array, 1)
    g_db = np.array([-95.0, -101.0])

    def csi(gains_db):
        a = 10 ** (np.asarray(gains_db)[None, :] / 20) * np.exp(1j * np.array([[0.4, -2.0]]))
        paths = path_set(a, [[1.0e-7, 4.3e-7]], [[dep1, dep2]], [[dep1_el, dep2_el]], [[arr1, arr2]], [[arr1_el, arr2_el]])
        return mimo_ofdm_channels(paths, bs_array, ue_array, BUDGET)

    h = csi(g_db)
    scorer = CsiBeamformingScorer(h, BUDGET.snr_scale, dft_codebook(bs_array), dft_codebook(ue_array),
                                  precision="double")
    closed_form = np.log2(1 + BUDGET.snr_scale * 16 * 10 ** (g_db / 10))
    np.testing.assert_allclose(scorer.perfect_csi_rates(), closed_form[:1], rtol=1e-5)
    np.testing.assert_allclose(scorer.perfect_gains, 16 * 10 ** (g_db[0] / 10), rtol=1e-5)
    swapped = scorer.rates(csi(g_db[::-1]), pilot_overhead=rho)
    np.testing.assert_allclose(swapped.rate_bps_hz, (1 - rho) * closed_form[1:], rtol=1e-5)
    np.testing.assert_allclose(swapped.gain_loss_db, g_db[0] - g_db[1], atol=1e-4)
    # The pilot overhead is charged exactly, nothing else changes
    free = scorer.rates(csi(g_db[::-1]), pilot_overhead=0.0)
    np.testing.assert_array_equal(swapped.bs_beam, free.bs_beam)
    np.testing.assert_allclose(swapped.rate_bps_hz, (1 - rho) * free.rate_bps_hz, rtol=1e-15)


def test_perfect_csi_bounds_predictions_which_beat_random_beams(multipath):
    h, scorer = multipath
    rng = np.random.default_rng(3)
    perfect = scorer.perfect_csi_rates()
    # Eq. (10) maximises the average gain, not the rate: a near-perfect prediction can edge past perfect CSI
    # in rate on some UEs (by ~0.003 bit/s/Hz on average at 10 dB with some seeds), so "good" here is 0 dB
    good, bad = scorer.rates(noisy(h, 0.0, rng)), scorer.rates(noisy(h, -10.0, rng))
    random_beam = scorer.random_beam_rates(seed=5)
    # The perfect pair maximises the true average gain: no prediction loses gain below 0 dB
    assert good.gain_loss_db.min() >= -1e-4 and bad.gain_loss_db.min() >= -1e-4
    assert good.gain_loss_db.mean() < bad.gain_loss_db.mean()
    assert perfect.mean() > good.rate_bps_hz.mean() > bad.rate_bps_hz.mean() > random_beam.mean()
    # Without a codebook the dominant eigenmode of every subcarrier bounds every pair, UE by UE
    assert np.all(scorer.unconstrained_rates() >= perfect - 1e-5)
    # Regression anchors of this seeded drop [bit/s/Hz]
    assert perfect.mean() == pytest.approx(14.538, abs=0.01)
    assert good.rate_bps_hz.mean() == pytest.approx(14.502, abs=0.01)
    assert random_beam.mean() == pytest.approx(8.29, abs=0.02)


def test_beam_sweep_pays_its_overhead(multipath):
    h, scorer = multipath
    assert scorer.num_pairs == 32
    assert sweep_overhead(32, pilot_symbols_per_pair=2, coherence_symbols=640) == pytest.approx(0.1)
    np.testing.assert_allclose(scorer.beam_sweep_rates(2, 640), 0.9 * scorer.perfect_csi_rates(), rtol=1e-12)
    np.testing.assert_array_equal(scorer.beam_sweep_rates(1, 32), 0.0)
    np.testing.assert_array_equal(scorer.beam_sweep_rates(4, 64), 0.0)  # the sweep does not fit in the block


def test_more_bs_antennas_never_lower_the_perfect_csi_rate():
    """Centred ULAs of 8 < 16 < 32 < 64 elements are nested sub-arrays: the unconstrained rate cannot drop
    on any UE, and the DFT-codebook perfect-CSI rate grows on average."""
    paths = random_path_set(60, 4, seed=5)
    unconstrained, codebook = [], []
    for num_ant in (8, 16, 32, 64):
        array = AntennaArray(num_cols=num_ant)
        h = mimo_ofdm_channels(paths, array, AntennaArray(num_cols=1), BUDGET)
        scorer = CsiBeamformingScorer(h, BUDGET.snr_scale, dft_codebook(array), precision="double")
        unconstrained.append(scorer.unconstrained_rates())
        codebook.append(scorer.perfect_csi_rates().mean())
    assert np.all(np.diff(np.stack(unconstrained), axis=0) >= -1e-9)
    assert np.all(np.diff(codebook) > 0.3)


def test_effective_rate_and_bad_input():
    np.testing.assert_allclose(effective_rates(np.array([[1.0, 3.0]]), 1.0, 0.5), [0.5 * 1.5])
    h = np.zeros((2, 3, 2, 4), complex)
    codebook = dft_codebook(AntennaArray(num_cols=4))
    with pytest.raises(CkmsimError, match="ue_codebook=None"):
        CsiBeamformingScorer(h, 1.0, codebook)
    with pytest.raises(CkmsimError, match="bs_codebook.shape"):
        CsiBeamformingScorer(h, 1.0, codebook[:, :3], np.eye(2))
    with pytest.raises(CkmsimError, match="snr_scale="):
        CsiBeamformingScorer(h, -1.0, codebook, np.eye(2))
    scorer = CsiBeamformingScorer(h, 1.0, codebook, np.eye(2))
    with pytest.raises(CkmsimError, match="h_pred.shape"):
        scorer.rates(h[:1])
    with pytest.raises(CkmsimError, match="pilot_overhead="):
        scorer.rates(h, pilot_overhead=1.5)
    with pytest.raises(CkmsimError, match="coherence_symbols="):
        sweep_overhead(4, 1, 0)
    # A UE without any channel: zero rate and no gain loss
    np.testing.assert_array_equal(scorer.rates(h).gain_loss_db, 0.0)

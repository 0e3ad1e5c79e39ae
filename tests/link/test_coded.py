"""Coded link: the 38.214 MCS table, BLER against SNR, the shipped thresholds, map-driven MCS selection.

Every simulation here runs a handful of MCS (each XLA-compiled once per process, a few seconds on a CPU) with
128 codewords per point: BLER is resolved to ~1/128 and compared with Monte-Carlo tolerances.
"""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.link.coded import (CodedLinkScorer, CodedLinkSettings, McsTable, McsThresholds, beamformed_channels,
                               calibrate_thresholds, eesm_beta, effective_snr_db, load_thresholds, select_mcs,
                               simulate_coded_link)

NUM_SC = 16
CODEWORDS = 128
#: The MCS most tests simulate (16-QAM, R = 340/1024): one XLA compile shared by them.
MCS = 10


def _db(x):
    return 10 * np.log10(x)


def _binomial_sd(p, n=CODEWORDS):
    return np.sqrt(np.maximum(p * (1 - p), 1 / n) / n)


def _selective_channels(rng, num_ue: int, target_snr_db: float, at_mcs: int) -> tuple[np.ndarray, np.ndarray]:
    """4-tap Rayleigh channels over NUM_SC subcarriers, and per-UE snr_scale putting MCS ``at_mcs``'s EESM, eq. (2),
    at ``target_snr_db``."""
    taps = (rng.standard_normal((num_ue, 4)) + 1j * rng.standard_normal((num_ue, 4))) / np.sqrt(8)
    # [num_ue, NUM_SC]
    h = np.fft.fft(taps, n=NUM_SC, axis=1)
    scale = np.empty(num_ue)
    for u in range(num_ue):
        lo, hi = -40.0, 80.0
        for _ in range(60):
            mid = (lo + hi) / 2
            too_low = effective_snr_db(h[u:u + 1], 10 ** (mid / 10))[0, at_mcs] < target_snr_db
            lo, hi = (mid, hi) if too_low else (lo, mid)
        scale[u] = 10 ** (lo / 10)
    return h, scale


def test_mcs_table_matches_38214_by_hand():
    table = McsTable.from_3gpp(1)
    assert len(table) == 29
    # 38.214 Table 5.1.3.1-1: (I_MCS, Q_m, R x 1024, spectral efficiency)
    for mcs, order, rate_x1024, efficiency in [(0, 2, 120, 0.2344), (9, 2, 679, 1.3262), (10, 4, 340, 1.3281),
                                               (16, 4, 658, 2.5703), (17, 6, 438, 2.5664), (28, 6, 948, 5.5547)]:
        assert table.modulation_order[mcs] == order
        assert table.code_rate[mcs] * 1024 == rate_x1024
        assert table.spectral_efficiency[mcs] == pytest.approx(efficiency, abs=5e-5)
    # Table 5.1.3.1-2 (256-QAM): 28 entries, the half-integer rates kept exactly
    table2 = McsTable.from_3gpp(2)
    assert len(table2) == 28
    assert (table2.modulation_order[20], table2.code_rate[20] * 1024) == (8, 682.5)
    assert table2.spectral_efficiency[27] == pytest.approx(7.4063, abs=5e-5)


def test_effective_snr_closed_forms():
    flat = np.ones((1, NUM_SC))
    for method in ("eesm", "capacity", "mean"):
        np.testing.assert_allclose(effective_snr_db(flat, 10.0, method), 10.0)
    # two subcarriers with SNR 3 and 15: capacity-equivalent sqrt(4 * 16) - 1 = 7, mean 9,
    # EESM -beta ln((exp(-3/beta) + exp(-15/beta)) / 2) with Sionna's beta of each MCS
    h = np.array([[np.sqrt(3), np.sqrt(15)]])
    np.testing.assert_allclose(effective_snr_db(h, 1.0, "capacity"), _db(7.0))
    np.testing.assert_allclose(effective_snr_db(h, 1.0, "mean"), _db(9.0))
    beta = eesm_beta(1)
    eesm = -beta * np.log((np.exp(-3 / beta) + np.exp(-15 / beta)) / 2)
    np.testing.assert_allclose(effective_snr_db(h, 1.0), _db(eesm[None]))
    # EESM lies between the weakest subcarrier and the mean, and nears the mean for large beta (64-QAM)
    assert np.all((eesm > 3) & (eesm < 9)) and eesm[28] > eesm[0]
    # no underflow on strong subcarriers, -inf for a dead channel
    assert np.all(np.isfinite(effective_snr_db(h, 1e6))) and np.all(effective_snr_db(0 * h, 1.0) == -np.inf)
    # beamforming convention: |f^H h_k|^2 with a matched unit-norm beam is the array gain
    a = np.exp(1j * np.pi * np.arange(4) * 0.3) / 2
    assert np.abs(beamformed_channels(np.tile(2 * a, (1, 3, 1)), a[None])) ** 2 == pytest.approx(np.full((1, 3), 4.0))


def test_select_mcs_takes_the_highest_spectral_efficiency_within_the_margin():
    thresholds = McsThresholds(settings=CodedLinkSettings(), target_bler=0.1, snr_db=np.arange(29.0))
    assert select_mcs([5.0, 5.0 - 1e-9, -30.0, 40.0], thresholds).tolist() == [5, 4, 0, 28]
    assert select_mcs([8.0], thresholds, margin_db=3.0).tolist() == [5]
    # 38.214 Table 1 is not monotone: MCS 17 (64-QAM) has a lower SE than MCS 16, so 16 wins at 17 dB
    assert select_mcs([17.0], thresholds).tolist() == [16]
    # a per-MCS effective SNR (eq. (2)) is compared MCS by MCS
    per_mcs = np.full((1, 29), 30.0)
    per_mcs[0, 20:] = 0.0
    assert select_mcs(per_mcs, thresholds).tolist() == [19]


def test_shipped_thresholds_are_consistent():
    shipped = load_thresholds()
    table = shipped.settings.table
    assert shipped.settings == CodedLinkSettings() and shipped.target_bler == 0.1
    assert np.all(np.isfinite(shipped.snr_db)) and "python -m ckmsim.link.coded" in shipped.provenance["command"]
    # above the Shannon SNR of each MCS, by the 1-4 dB a 256-symbol LDPC codeword needs at 10 % BLER
    gap_db = shipped.snr_db - _db(2 ** table.spectral_efficiency - 1)
    assert np.all(gap_db > 1.0) and np.all(gap_db < 4.5)
    # within one modulation, a higher code rate needs more SNR
    for order in np.unique(table.modulation_order):
        assert np.all(np.diff(shipped.snr_db[table.modulation_order == order]) > 0)


def test_bler_falls_with_snr_through_the_calibrated_threshold():
    threshold_db = load_thresholds().snr_db[MCS]
    offsets_db = np.array([-1.5, -0.75, 0.0, 0.75, 1.5])
    score = simulate_coded_link(np.ones((offsets_db.size, NUM_SC)), 10 ** ((threshold_db + offsets_db) / 10), MCS,
                                num_codewords=CODEWORDS, seed=1, batch_size=128)
    bler = score.bler
    # independent noise per point (keys = rows): monotone within 3 binomial standard deviations
    assert np.all(np.diff(bler) <= 3 * _binomial_sd(bler[:-1])), bler
    # the shipped 10 %-BLER SNR, checked loosely: well above 10 % 1.5 dB below it, well below 1.5 dB above it
    assert bler[0] > 0.3 and bler[-1] < 0.03
    assert abs(bler[2] - 0.1) < 4 * _binomial_sd(0.1)
    np.testing.assert_allclose(score.goodput_bps_hz, (1 - bler) * McsTable.from_3gpp(1).spectral_efficiency[MCS])


def test_tiny_recalibration_reproduces_the_shipped_threshold():
    tiny = calibrate_thresholds(mcs_indices=[MCS], num_codewords=CODEWORDS, snr_step_db=0.5, window=4, seed=3,
                                batch_size=128)
    assert abs(tiny.snr_db[MCS] - load_thresholds().snr_db[MCS]) < 0.5
    assert np.isnan(tiny.snr_db[MCS + 1])


def test_high_snr_is_error_free_and_earns_the_spectral_efficiency(rng):
    # MCS 0 exercises the repetition below rate 1/5, MCS 28 the highest code rate
    h, scale = _selective_channels(rng, 2, 45.0, at_mcs=28)
    score = simulate_coded_link(h, scale, [0, 28], num_codewords=CODEWORDS, seed=2, batch_size=128)
    assert score.bler.tolist() == [0.0, 0.0]
    np.testing.assert_allclose(score.goodput_bps_hz, McsTable.from_3gpp(1).spectral_efficiency[[0, 28]])


def test_results_are_seeded_and_independent_of_batch_mates(rng):
    h, scale = _selective_channels(rng, 3, load_thresholds().snr_db[MCS], at_mcs=MCS)
    alone = simulate_coded_link(h[1:2], scale[1:2], MCS, num_codewords=CODEWORDS, seed=4, batch_size=128, keys=[1])
    together = simulate_coded_link(h, scale, MCS, num_codewords=CODEWORDS, seed=4, batch_size=128)
    assert alone.bler[0] == together.bler[1]
    again = simulate_coded_link(h, scale, MCS, num_codewords=CODEWORDS, seed=4, batch_size=128)
    np.testing.assert_array_equal(again.bler, together.bler)


def test_optimistic_map_loses_to_errors_pessimistic_map_to_a_low_mcs(rng):
    # EESM of MCS 22 (64-QAM, threshold 13.75 dB) at 14 dB: the genie picks MCS 22 for both UEs
    h, scale = _selective_channels(rng, 2, 14.0, at_mcs=22)
    scorer = CodedLinkScorer(h, scale, num_codewords=CODEWORDS, seed=5, batch_size=128)
    np.testing.assert_allclose(scorer.true_snr_db[:, 22], 14.0, atol=1e-6)
    genie = scorer.genie()
    optimistic = scorer.score(scorer.true_snr_db + 10.0)
    pessimistic = scorer.score(scorer.true_snr_db - 10.0)
    assert np.all(optimistic.mcs > genie.mcs) and np.all(pessimistic.mcs < genie.mcs)
    assert np.all(genie.bler < 0.3) and np.all(optimistic.bler > 0.9)
    assert np.all(pessimistic.bler <= genie.bler + 3 * _binomial_sd(genie.bler))
    assert np.all(pessimistic.goodput_bps_hz < genie.goodput_bps_hz)
    # an exact map is the genie; a second look reuses the simulated pairs and changes nothing
    exact = scorer.score(scorer.true_snr_db)
    np.testing.assert_array_equal(exact.bler, genie.bler)
    np.testing.assert_array_equal(exact.mcs, genie.mcs)
    # a margin backs off from the genie's choice
    assert np.all(select_mcs(scorer.true_snr_db, scorer.thresholds, margin_db=3.0) < genie.mcs)


@pytest.mark.large
def test_xla_graph_and_eager_agree():
    snr = 10 ** (load_thresholds().snr_db[MCS] / 10)
    blers = [simulate_coded_link(np.ones((2, NUM_SC)), snr, MCS, num_codewords=CODEWORDS, seed=6, batch_size=128,
                                 mode=mode).bler for mode in ("xla", "graph", "eager")]
    for bler in blers[1:]:
        np.testing.assert_allclose(bler, blers[0], atol=3 / CODEWORDS)


@pytest.mark.large
def test_recalibration_matches_the_shipped_table_closely():
    shipped = load_thresholds()
    fresh = calibrate_thresholds(mcs_indices=[0, 9, 16, 28], num_codewords=1024, seed=7)
    np.testing.assert_allclose(fresh.snr_db[[0, 9, 16, 28]], shipped.snr_db[[0, 9, 16, 28]], atol=0.15)


def test_bad_inputs_are_named():
    h = np.ones((2, NUM_SC))
    cases = [
        (lambda: simulate_coded_link(np.ones(NUM_SC), 1.0, MCS), "h_eff"),
        (lambda: simulate_coded_link(np.full((2, NUM_SC), np.nan), 1.0, MCS), "h_eff"),
        (lambda: simulate_coded_link(h, -1.0, MCS), "snr_scale"),
        (lambda: simulate_coded_link(h, [1.0, 2.0, 3.0], MCS), "snr_scale"),
        (lambda: simulate_coded_link(h, 1.0, 29), "mcs_index"),
        (lambda: simulate_coded_link(h, 1.0, 2.5), "mcs_index"),
        (lambda: simulate_coded_link(h, 1.0, [1, 2, 3]), "mcs_index"),
        (lambda: simulate_coded_link(h, 1.0, MCS, num_codewords=0), "num_codewords"),
        (lambda: simulate_coded_link(h, 1.0, MCS, seed=-1), "seed"),
        (lambda: simulate_coded_link(h, 1.0, MCS, mode="jit"), "mode"),
        (lambda: CodedLinkSettings(num_symbols=0), "num_symbols"),
        (lambda: CodedLinkSettings(num_symbols=8), "num_symbols"),
        (lambda: CodedLinkSettings(num_symbols=10**5), "num_symbols"),
        (lambda: CodedLinkSettings(mcs_table=5), "table_index"),
        (lambda: effective_snr_db(h, 1.0, "miesm"), "method"),
        (lambda: CodedLinkScorer(h, 1.0, margin_db=-1.0), "margin_db"),
        (lambda: CodedLinkScorer(h, 1.0).score([10.0]), "predicted_snr_db"),
        (lambda: CodedLinkScorer(h, 1.0).score(np.zeros((2, 5))), "predicted_snr_db"),
        (lambda: effective_snr_db(h, 1.0, mcs_table=3), "mcs_table"),
        (lambda: CodedLinkScorer(h, 1.0).score([10.0, np.nan]), "predicted_snr_db"),
        (lambda: CodedLinkSettings.from_dict({"num_symbol": 256}), "num_symbol"),
    ]
    for make, name in cases:
        with pytest.raises(CkmsimError, match=name):
            make()

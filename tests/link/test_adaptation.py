"""Link adaptation from a gain map: closed forms on broadside LoS paths, outage, and margins calibrated on\nUEs that are not scored (fairness, each map its own margin, out-of-sample outage)."""

import numpy as np
import pytest
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.adaptation import RateAdaptationScorer, calibrate_margin_db
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import path_set, random_path_set
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray

NUM_ANT = 16
GAIN_DB = -100.0


def _single_broadside_path_scorer() -> BeamSelectionScorer:
    """Two UEs, one LoS path each from broadside (az 0, el 0): DFT beam 0 collects the full array gain."""
    a = np.full((2, 1), 10 ** (GAIN_DB / 20), dtype=np.complex64)
    paths = xr.Dataset({"a": (("ue", "path"), a), "delay_s": (("ue", "path"), np.full((2, 1), 1e-7)),
                        "dep_az_deg": (("ue", "path"), np.zeros((2, 1))),
                        "dep_el_deg": (("ue", "path"), np.zeros((2, 1))),
                        "los": (("ue", "path"), np.ones((2, 1), bool)), "valid": (("ue", "path"), np.ones((2, 1), bool))},
                       coords={"ue_row": ("ue", [0, 1]), "ue_col": ("ue", [0, 0])})
    return BeamSelectionScorer(paths, AntennaArray(num_cols=NUM_ANT), LinkBudget(num_subcarriers=4))


def _gain_map(values_db) -> xr.Dataset:
    return xr.Dataset({"gain_db": (("y", "x"), np.asarray(values_db, dtype=np.float64).reshape(2, 1))})


def test_capacity_is_the_closed_form_of_a_matched_beam():
    scorer = _single_broadside_path_scorer()
    budget = LinkBudget(num_subcarriers=4)
    closed_form = np.log2(1 + budget.snr_scale * NUM_ANT * 10 ** (GAIN_DB / 10))
    np.testing.assert_allclose(scorer.perfect_csi_rates(), closed_form, rtol=1e-5)


def test_exact_map_without_margin_gets_the_capacity_optimistic_map_gets_outage():
    scorer = _single_broadside_path_scorer()
    adaptation = RateAdaptationScorer(scorer, margin_db=0.0)
    capacity = scorer.perfect_csi_rates()
    slightly_low = adaptation.rates(_gain_map([GAIN_DB - 1e-3, GAIN_DB - 1e-3]))
    np.testing.assert_allclose(slightly_low.rate_bps_hz, capacity, rtol=1e-4)
    assert not slightly_low.outage.any()
    mixed = adaptation.rates(_gain_map([GAIN_DB + 1.0, GAIN_DB - 10.0]))
    assert mixed.outage.tolist() == [True, False]
    assert mixed.rate_bps_hz[0] == 0.0
    expected = np.log2(1 + LinkBudget(num_subcarriers=4).snr_scale * NUM_ANT * 10 ** ((GAIN_DB - 10) / 10))
    assert mixed.rate_bps_hz[1] == pytest.approx(expected, rel=1e-9)
    assert mixed.rate_bps_hz[1] < capacity[1]


def _broadside_scorer(gains_db: np.ndarray) -> BeamSelectionScorer:
    """One UE per gain, each with one LoS path from broadside: beam 0 collects N |g|^2 exactly."""
    num_ue = len(gains_db)
    paths = path_set(10 ** (np.asarray(gains_db)[:, None] / 20) * np.exp(0.3j), np.full((num_ue, 1), 1e-7),
                     np.zeros((num_ue, 1)), np.zeros((num_ue, 1)), ue_row=np.zeros(num_ue, int), ue_col=np.arange(num_ue))
    return BeamSelectionScorer(paths, AntennaArray(num_cols=NUM_ANT), LinkBudget(num_subcarriers=4))


def _row_map(values_db) -> xr.Dataset:
    return xr.Dataset({"gain_db": (("y", "x"), np.asarray(values_db, dtype=np.float64)[None, :])})


@pytest.mark.parametrize("margin_db", [0.0, 3.0, 10.0])
def test_delivered_rate_is_the_closed_form_of_map_error_and_margin(margin_db, rng):
    """UE i with true gain g_i and map error e_i [dB]: the map selects log2(1 + SNR N g_i 10^((e_i - m)/10)),
    which gets through iff e_i < m; capacity log2(1 + SNR N g_i) written out, not read from the scorer."""
    gains_db = rng.uniform(-115, -85, size=24)
    errors_db = rng.uniform(-12, 12, size=24)
    errors_db[np.abs(errors_db - margin_db) < 1e-3] += 0.01  # no UE exactly at the edge
    scorer = _broadside_scorer(gains_db)
    snr = LinkBudget(num_subcarriers=4).snr_scale * NUM_ANT * 10 ** (gains_db / 10)
    np.testing.assert_allclose(scorer.perfect_csi_rates(), np.log2(1 + snr), rtol=1e-5)
    score = RateAdaptationScorer(scorer, margin_db=margin_db).rates(_row_map(gains_db + errors_db))
    selected = np.log2(1 + snr * 10 ** ((errors_db - margin_db) / 10))
    np.testing.assert_allclose(score.selected_bps_hz, selected, rtol=1e-9)
    np.testing.assert_array_equal(score.outage, errors_db > margin_db)
    np.testing.assert_allclose(score.rate_bps_hz, np.where(errors_db > margin_db, 0.0, selected), rtol=1e-9)


def test_bad_inputs_are_named():
    scorer = _single_broadside_path_scorer()
    with pytest.raises(CkmsimError, match="margin_db"):
        RateAdaptationScorer(scorer, margin_db=-1)
    with pytest.raises(CkmsimError, match="NaN"):
        RateAdaptationScorer(scorer).rates(_gain_map([np.nan, GAIN_DB]))
    with pytest.raises(CkmsimError, match="gain_db"):
        RateAdaptationScorer(scorer).rates(xr.Dataset())


def _multipath_scorer(num_ue: int, seed: int) -> tuple[BeamSelectionScorer, xr.Dataset]:
    """Random 3-path UEs on one row of cells and their total-power gain map (which a codebook beam does not
    reach everywhere, so even this map needs a back-off)."""
    paths = random_path_set(num_ue, 3, seed=seed)
    paths = paths.assign_coords(ue_row=("ue", np.zeros(num_ue, int)), ue_col=("ue", np.arange(num_ue)))
    scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=8), LinkBudget(num_subcarriers=4))
    gain = 10 * np.log10((np.abs(paths["a"].values) ** 2).sum(axis=1))
    return scorer, _row_map(gain)


def test_margin_reads_only_the_calibration_ues(rng):
    """Fairness: the margin is a function of the calibration UEs alone; a mask and indices agree."""
    scorer, truth = _multipath_scorer(120, seed=3)
    calibration = np.zeros(120, dtype=bool)
    calibration[rng.choice(120, size=40, replace=False)] = True
    margin = calibrate_margin_db(scorer, truth, 0.1, calibration)
    assert margin == calibrate_margin_db(scorer, truth, 0.1, np.flatnonzero(calibration))
    # Whatever the map says at the other UEs, the margin does not move
    tampered = truth.copy(deep=True)
    tampered["gain_db"].values[0, ~calibration] += rng.normal(0, 20, size=80)
    assert calibrate_margin_db(scorer, tampered, 0.1, calibration) == margin
    # ... and it does move when the calibration UEs' map does
    assert calibrate_margin_db(scorer, truth, 0.1, ~calibration) != margin
    with pytest.raises(CkmsimError, match="no calibration UE"):
        calibrate_margin_db(scorer, truth, 0.1, np.zeros(120, dtype=bool))
    with pytest.raises(CkmsimError, match="ues must be"):
        calibrate_margin_db(scorer, truth, 0.1, np.ones(5, dtype=bool))


def test_each_map_gets_its_own_margin_a_constant_bias_is_calibrated_away(rng):
    """A map 6 dB too optimistic everywhere needs exactly 6 dB more back-off, and then delivers the same rates."""
    scorer, truth = _multipath_scorer(100, seed=4)
    calibration = np.arange(100) < 50
    biased = truth.copy(deep=True)
    biased["gain_db"] = biased["gain_db"] + 6.0
    own = RateAdaptationScorer.calibrated(scorer, truth, calibration)
    biased_own = RateAdaptationScorer.calibrated(scorer, biased, calibration)
    assert own.margin_db > 0
    assert biased_own.margin_db == pytest.approx(own.margin_db + 6.0, abs=1e-9)
    np.testing.assert_allclose(biased_own.rates(biased).rate_bps_hz, own.rates(truth).rate_bps_hz, rtol=1e-9)
    # With the unbiased map's margin the biased map fails on many more UEs: a shared margin is not fair
    shared = RateAdaptationScorer(scorer, own.margin_db).rates(biased)
    assert shared.outage[~calibration].mean() > own.rates(truth).outage[~calibration].mean() + 0.2


def test_margin_calibrated_on_held_out_ues_meets_the_target_out_of_sample():
    """Exchangeable UEs: the outage on UEs the calibration never saw is the target up to binomial noise,
    while on the calibration UEs it is the target by construction."""
    scorer, truth = _multipath_scorer(800, seed=5)
    calibration = np.random.default_rng(9).permutation(800) < 400
    adaptation = RateAdaptationScorer.calibrated(scorer, truth, calibration, target_outage=0.1)
    outage = adaptation.rates(truth).outage
    assert outage[calibration].mean() <= 0.1 + 1e-9
    # 3 standard deviations of a binomial fraction over 400 UEs
    assert abs(outage[~calibration].mean() - 0.1) < 3 * np.sqrt(0.1 * 0.9 / 400)
    with pytest.raises(CkmsimError, match="target_outage"):
        calibrate_margin_db(scorer, truth, target_outage=0.0)

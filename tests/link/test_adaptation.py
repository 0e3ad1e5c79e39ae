"""Link adaptation from a gain map: closed form on a single broadside LoS path, outage and back-off."""

import numpy as np
import pytest
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.adaptation import RateAdaptationScorer
from ckmsim.link.budget import LinkBudget
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


def test_margin_trades_rate_for_safety_and_never_exceeds_capacity(rng):
    scorer = _single_broadside_path_scorer()
    noisy = _gain_map(GAIN_DB + rng.normal(0, 3, 2))
    rates = {m: RateAdaptationScorer(scorer, margin_db=m).rates(noisy) for m in (0.0, 3.0, 10.0)}
    for score in rates.values():
        assert np.all(score.rate_bps_hz <= scorer.perfect_csi_rates() + 1e-12)
    assert np.all(np.diff([rates[m].selected_bps_hz for m in (0.0, 3.0, 10.0)], axis=0) < 0)


def test_bad_inputs_are_named():
    scorer = _single_broadside_path_scorer()
    with pytest.raises(CkmsimError, match="margin_db"):
        RateAdaptationScorer(scorer, margin_db=-1)
    with pytest.raises(CkmsimError, match="NaN"):
        RateAdaptationScorer(scorer).rates(_gain_map([np.nan, GAIN_DB]))
    with pytest.raises(CkmsimError, match="gain_db"):
        RateAdaptationScorer(scorer).rates(xr.Dataset())


def test_calibrated_margin_holds_the_true_maps_outage_at_the_target(rng):
    from ckmsim.link.adaptation import calibrate_margin_db

    num_ue = 200
    a = ((rng.normal(size=(num_ue, 3)) + 1j * rng.normal(size=(num_ue, 3))) * 1e-5).astype(np.complex64)
    paths = xr.Dataset({"a": (("ue", "path"), a), "delay_s": (("ue", "path"), rng.uniform(1e-7, 3e-7, (num_ue, 3))),
                        "dep_az_deg": (("ue", "path"), rng.uniform(-90, 90, (num_ue, 3))),
                        "dep_el_deg": (("ue", "path"), rng.uniform(-20, 0, (num_ue, 3))),
                        "los": (("ue", "path"), np.zeros((num_ue, 3), bool)),
                        "valid": (("ue", "path"), np.ones((num_ue, 3), bool))},
                       coords={"ue_row": ("ue", np.arange(num_ue) // 20), "ue_col": ("ue", np.arange(num_ue) % 20)})
    scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=8), LinkBudget(num_subcarriers=4))
    # A "true map": the total path power, which the beamformed multipath channel does not reach everywhere.
    gain = np.zeros((10, 20))
    gain[paths["ue_row"].values, paths["ue_col"].values] = 10 * np.log10((np.abs(a) ** 2).sum(axis=1))
    truth = xr.Dataset({"gain_db": (("y", "x"), gain)})
    margin = calibrate_margin_db(scorer, truth, target_outage=0.1)
    assert margin > 0
    outage = RateAdaptationScorer(scorer, margin_db=margin).rates(truth).outage.mean()
    assert outage <= 0.1 + 1e-9 and outage >= 0.1 - 2 / num_ue
    with pytest.raises(CkmsimError, match="target_outage"):
        calibrate_margin_db(scorer, truth, target_outage=0.0)

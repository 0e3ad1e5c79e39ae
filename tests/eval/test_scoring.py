"""A study's link scores without ray tracing (ckmsim.eval.scoring): pilots charged exactly, headline over the
UEs a task did not measure, margins from calibration UEs only, each score against its own bound."""

import numpy as np
import pytest
import xarray as xr

from ckmsim.eval.scoring import StudyScorers
from ckmsim.link.adaptation import RateAdaptationScorer
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import random_path_set
from ckmsim.link.csi_beamforming import CsiBeamformingScorer
from ckmsim.link.map_csi import PARTIAL_PILOT_OVERHEAD, MapCsiBeamformingScorer
from ckmsim.link.precoding import SCMPrecodingScorer
from ckmsim.link.score import BeamSelectionScorer, RateScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.ground_truth import path_layers

NUM = 8  # UEs on an 8 x 8 grid, one per cell


@pytest.fixture(scope="module")
def study():
    """64 random 3-path UEs, their perfect CKM, and the study's scorers (4 blocks of 4 x 4 cells)."""
    paths = random_path_set(NUM * NUM, 3, seed=21)
    grid = Grid(0.0, 0.0, NUM, NUM, 2.0)
    layers = path_layers(paths, grid, 2)
    gain = np.full((NUM, NUM), np.nan)
    gain[paths["ue_row"].values, paths["ue_col"].values] = 10 * np.log10((np.abs(paths["a"].values) ** 2).sum(axis=1))
    truth = make_ckm(grid, {"gain_db": gain, "building": np.zeros((NUM, NUM), bool), **layers},
                     {"frequency_hz": 3.5e9, "bs_position_m": [0.0, 0.0, 20.0]})
    scorers = StudyScorers(paths, 3.5e9, AntennaArray(num_cols=8), AntennaArray(num_cols=1),
                           LinkBudget(num_subcarriers=8), block_cells=4, calibration_fraction=0.25, seed=1)
    return truth, scorers


def _noisy(truth: xr.Dataset, seed: int) -> xr.Dataset:
    """A prediction: the truth with 4 dB gain errors and 5 deg angle errors at every cell."""
    rng = np.random.default_rng(seed)
    pred = truth.copy(deep=True)
    pred["gain_db"] = pred["gain_db"] + rng.normal(0, 4, pred["gain_db"].shape)
    pred["path_gain_db"] = pred["path_gain_db"] + rng.normal(0, 4, pred["path_gain_db"].shape)
    pred["aoa_az_deg"] = pred["aoa_az_deg"] + rng.normal(0, 5, pred["aoa_az_deg"].shape)
    return pred


def test_every_scorer_has_the_rate_scorer_face(study):
    _, scorers = study
    for scorer in (scorers.beam, scorers.precoding, scorers.csi, scorers.csi.scorer,
                   RateAdaptationScorer(scorers.beam, 3.0)):
        assert isinstance(scorer, RateScorer), type(scorer).__name__
        assert scorer.perfect_csi_rates().shape == (scorers.num_ues,)
    assert not isinstance(object(), RateScorer)
    for cls in (BeamSelectionScorer, SCMPrecodingScorer, MapCsiBeamformingScorer, CsiBeamformingScorer,
                RateAdaptationScorer):
        assert callable(getattr(cls, "rates")) and callable(getattr(cls, "perfect_csi_rates"))


def test_declared_pilot_overhead_is_charged_exactly_on_every_rate(study):
    truth, scorers = study
    observation = Degradation([Subsample(2)], seed=0)(truth)
    sets = scorers.ue_sets(observation)
    prediction = _noisy(truth, 1)
    free = scorers.score(prediction, sets, 0.0)
    charged = scorers.score(prediction, sets, PARTIAL_PILOT_OVERHEAD)
    for name in ("beam", "precoding", "adaptation", "csi"):
        np.testing.assert_allclose(getattr(charged, name), (1 - 0.125) * getattr(free, name), rtol=1e-12,
                                   err_msg=name)
    # Pilots cost rate, not decisions: the same margin and outages
    assert charged.margin_db == free.margin_db
    np.testing.assert_array_equal(charged.outage, free.outage)
    records = scorers.method_rate_records(charged, sets)
    assert records["downlink_pilot_overhead"] == 0.125 and records["rate_csi_beamforming"]["pilot_overhead"] == 0.125
    free_records = scorers.method_rate_records(free, sets)
    for key in ("rate", "rate_precoding", "rate_adaptation", "rate_csi_beamforming"):
        assert records[key]["mean_bps_hz"] == pytest.approx(0.875 * free_records[key]["mean_bps_hz"], rel=1e-12)
    with pytest.raises(Exception, match="downlink_pilot_overhead"):
        scorers.score(prediction, sets, 1.5)


def test_headline_is_over_the_test_ues_off_the_lattice(study):
    truth, scorers = study
    observation = Degradation([Subsample(2)], seed=0)(truth)
    sets = scorers.ue_sets(observation)
    rows, cols = scorers.beam.ue_cells
    on_lattice = (rows % 2 == 0) & (cols % 2 == 0)
    np.testing.assert_array_equal(sets.held_out, scorers.split.test & ~on_lattice)
    np.testing.assert_array_equal(sets.calibration, scorers.split.calibration & ~on_lattice)
    assert not np.any(sets.calibration & sets.test)
    score = scorers.score(_noisy(truth, 2), sets)
    record = scorers.method_rate_records(score, sets)["rate"]
    held = sets.held_out
    assert record["num_ues"] == held.sum() == 36  # 3 test blocks x 12 off-lattice cells
    assert record["mean_bps_hz"] == pytest.approx(score.beam[held].mean())
    assert record["fraction_of_perfect_csi"] == pytest.approx(score.beam[held].mean()
                                                              / scorers.bounds["beam"][held].mean())
    assert record["all_test_ues"]["num_ues"] == 48
    assert record["all_test_ues"]["mean_bps_hz"] == pytest.approx(score.beam[sets.test].mean())


def test_margin_is_calibrated_on_the_methods_own_prediction_away_from_the_scored_ues(study):
    truth, scorers = study
    observation = Degradation([Subsample(2)], seed=0)(truth)
    sets = scorers.ue_sets(observation)
    prediction = _noisy(truth, 3)
    margin = scorers.score(prediction, sets).margin_db
    rows, cols = scorers.beam.ue_cells
    tampered = prediction.copy(deep=True)
    tampered["gain_db"].values[rows[sets.test], cols[sets.test]] += 15.0
    assert scorers.score(tampered, sets).margin_db == margin
    # An optimistic prediction at the calibration UEs raises its own margin; the truth has its own too
    optimistic = prediction.copy(deep=True)
    optimistic["gain_db"] = optimistic["gain_db"] + 5.0
    assert margin > 0
    assert scorers.score(optimistic, sets).margin_db == pytest.approx(margin + 5.0)
    _, truth_score = scorers.references(truth, seed=0)
    assert truth_score.margin_db != margin


def test_precoding_is_a_share_of_the_eigen_bound_not_of_the_codebook(study):
    truth, scorers = study
    references, _ = scorers.references(truth, seed=0)
    bound, codebook = scorers.bounds["precoding"], scorers.bounds["beam"]
    # The unconstrained bound is at least the best codebook beam on every UE (and above it on average)
    assert np.all(bound >= codebook - 1e-9) and bound.mean() > codebook.mean()
    rates, own = references["ground_truth_map_precoding"]
    assert own is bound
    assert np.all(rates <= bound + 1e-9)
    # Against the codebook bound an eigen-precoder may exceed 100 %; against its own bound it cannot
    assert rates.mean() / bound.mean() <= 1.0

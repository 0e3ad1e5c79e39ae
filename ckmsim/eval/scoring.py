"""The link scores of one study, charged and summarised fairly (DESIGN.md, "Link score").

:class:`StudyScorers` holds the scorers of one study's UEs (beam selection, SCM precoding, link adaptation,
CSI beamforming; each a :class:`~ckmsim.link.score.RateScorer` with its own bound) and the calibration /
test split of :mod:`ckmsim.eval.holdout`. :meth:`StudyScorers.score` scores one prediction:

- every rate a method earns pays the downlink pilot overhead :math:`\\rho` it declares
  (:attr:`ckmsim.baselines.base.Method.downlink_pilot_overhead`): :math:`(1-\\rho)` times what its decision
  earns on the true channel, exactly;
- link adaptation uses the method's *own* margin, calibrated on its prediction at the calibration UEs its
  task did not measure (:func:`ckmsim.link.adaptation.calibrate_margin_db`), never at a scored UE;
- each score is a share of its own bound: beam selection and link adaptation of the best DFT beam, SCM
  precoding of perfect-CSI eigen-beamforming (MRT), CSI beamforming of the best DFT pair.

:func:`summarize` reduces per-UE rates to the headline (test UEs the task did not measure) with the
all-test-UE figure beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.eval.holdout import DEFAULT_BLOCK_CELLS, UeSplit, measured_cells, spatial_block_split
from ckmsim.link.adaptation import RateAdaptationScorer, calibrate_margin_db
from ckmsim.link.budget import LinkBudget
from ckmsim.link.map_csi import MapCsiBeamformingScorer
from ckmsim.link.precoding import SCMPrecodingScorer
from ckmsim.link.score import BeamSelectionScorer, RateScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.degrade import Observation
from ckmsim.metrics.rate_metrics import NEAR_ZERO_BPS_HZ, rate_summary, share_below
from ckmsim.validation import check_fraction

#: Layers a prediction needs for the beam-selection and precoding scores.
BEAM_LAYERS = ("path_gain_db", "aoa_az_deg", "aoa_el_deg")
#: Summary of an empty UE set (a task that measured every test UE): no headline figure.
EMPTY_SUMMARY = {"mean_bps_hz": float("nan"), "p5_bps_hz": float("nan"), "median_bps_hz": float("nan"),
                 "fraction_of_perfect_csi": float("nan"), "num_ues": 0}


@dataclass(frozen=True)
class UeSets:
    """The UE sets of one task, each ``[num_ue]`` bool over the study's scored UEs.

    Attributes
    ----------
    test : test UEs (the all-test-UE figure)
    held_out : test UEs the task did not measure (the headline)
    calibration : calibration UEs the task did not measure (all calibration UEs if it measured every one)
    """

    test: np.ndarray
    held_out: np.ndarray
    calibration: np.ndarray


def _summary(rates: np.ndarray, bound: np.ndarray, mask: np.ndarray, extra: dict | None = None) -> dict:
    if not mask.any():
        return {**EMPTY_SUMMARY, "share_below_bps_hz": {f"{t:g}": float("nan") for t in NEAR_ZERO_BPS_HZ},
                **{name: float("nan") for name in (extra or {})}}
    out = {**rate_summary(rates[mask], bound[mask]), "num_ues": int(mask.sum()),
           "share_below_bps_hz": share_below(rates[mask])}
    for name, values in (extra or {}).items():
        out[name] = float(np.mean(values[mask]))
    return out


def summarize(rates: np.ndarray, bound: np.ndarray, sets: UeSets, extra: dict | None = None) -> dict:
    """Headline summary over ``sets.held_out`` with ``all_test_ues`` (over ``sets.test``) beside it.

    Input
    -----
    rates, bound : [num_ue], float — per-UE rates and the scorer's own bound [bit/s/Hz]
    sets : UeSets
    extra : name -> [num_ue] values averaged over the same UEs (e.g. ``outage_fraction``)

    Output
    ------
    dict: ``rate_summary`` keys, ``num_ues``, ``share_below_bps_hz`` (share of the UEs under each
    :data:`~ckmsim.metrics.rate_metrics.NEAR_ZERO_BPS_HZ` rate), the extras, and ``all_test_ues`` (the same
    over all test UEs)
    """
    return {**_summary(rates, bound, sets.held_out, extra), "all_test_ues": _summary(rates, bound, sets.test, extra)}


def summarize_reference(rates: np.ndarray, bound: np.ndarray, test: np.ndarray, sets_by_task: dict,
                        extra: dict | None = None) -> dict:
    """A reference (no task): summary over all test UEs, and ``by_task`` over each task's headline UEs."""
    return {**_summary(rates, bound, test, extra),
            "by_task": {task: _summary(rates, bound, sets.held_out, extra) for task, sets in sets_by_task.items()}}


@dataclass
class MethodScore:
    """Per-UE outcome of one prediction, over the study's scored UEs (``[num_ue]`` arrays, pilots paid).

    ``beam``, ``precoding`` and ``csi`` are None for a map without the layers they need.
    """

    pilot_overhead: float
    adaptation: np.ndarray
    outage: np.ndarray
    margin_db: float
    beam: np.ndarray | None = None
    precoding: np.ndarray | None = None
    csi: np.ndarray | None = None
    csi_gain_loss_db: np.ndarray | None = None
    scm: np.ndarray | None = None


class StudyScorers:
    """Every link scorer of one study, on the UEs with a ray-traced path, and their calibration / test split.

    Parameters
    ----------
    paths : path set of the UEs (``ue_row``/``ue_col``)
    frequency_hz : float — carrier [Hz]
    bs_array, ue_array : AntennaArray
    budget : LinkBudget
    oversampling : int — BS DFT codebook oversampling
    target_outage : float in (0, 1) — link adaptation's outage target on the calibration UEs
    block_cells, calibration_fraction, seed : the split of :func:`~ckmsim.eval.holdout.spatial_block_split`
    precision : "double" | "single" — of the beam-rate table
    """

    def __init__(self, paths: xr.Dataset, frequency_hz: float, bs_array: AntennaArray, ue_array: AntennaArray,
                 budget: LinkBudget, oversampling=1, target_outage: float = 0.1, block_cells: int = DEFAULT_BLOCK_CELLS,
                 calibration_fraction: float = 0.25, seed: int = 0, precision: str = "double"):
        self.beam = BeamSelectionScorer(paths, bs_array, budget, oversampling, precision=precision)
        self.precoding = SCMPrecodingScorer(self.beam)
        self.csi = MapCsiBeamformingScorer.from_beam_selection(self.beam, ue_array, frequency_hz, oversampling)
        self.target_outage = float(target_outage)
        rows, cols = self.beam.ue_cells
        self.split: UeSplit = spatial_block_split(rows, cols, block_cells, calibration_fraction, seed)
        # Each score is a share of the bound of its own scorer (the face every link scorer has); link
        # adaptation's does not depend on the margin.
        bound_of: dict[str, RateScorer] = {"beam": self.beam, "precoding": self.precoding,
                                           "adaptation": RateAdaptationScorer(self.beam), "csi": self.csi}
        #: score name -> ``[num_ue]`` float64, the bound its shares are of [bit/s/Hz]
        self.bounds = {name: scorer.perfect_csi_rates() for name, scorer in bound_of.items()}

    @property
    def num_ues(self) -> int:
        """Number of scored UEs."""
        return len(self.bounds["beam"])

    def ue_sets(self, observation: Observation | None) -> UeSets:
        """The UE sets of a task (``None``: a reference that measured nothing, or the truth)."""
        test, calibration = self.split.test, self.split.calibration
        if observation is None:
            return UeSets(test=test, held_out=test, calibration=calibration)
        rows, cols = self.beam.ue_cells
        measured = measured_cells(observation)[rows, cols]
        unmeasured_calibration = calibration & ~measured
        return UeSets(test=test, held_out=test & ~measured,
                      calibration=unmeasured_calibration if unmeasured_calibration.any() else calibration)

    def adaptation_scorer(self, ckm: xr.Dataset, sets: UeSets) -> RateAdaptationScorer:
        """Link adaptation of ``ckm`` with its own margin, calibrated on ``sets.calibration`` only."""
        return RateAdaptationScorer(self.beam, calibrate_margin_db(self.beam, ckm, self.target_outage,
                                                                   sets.calibration))

    def score(self, prediction: xr.Dataset, sets: UeSets, pilot_overhead: float = 0.0) -> MethodScore:
        """Every score ``prediction`` supports, each rate times ``1 - pilot_overhead`` (the method's own)."""
        rho = check_fraction(pilot_overhead, "downlink_pilot_overhead")
        keep = 1.0 - rho
        adaptation = self.adaptation_scorer(prediction, sets)
        adapted = adaptation.rates(prediction)
        result = MethodScore(pilot_overhead=rho, adaptation=keep * adapted.rate_bps_hz, outage=adapted.outage,
                             margin_db=adaptation.margin_db)
        if not all(layer in prediction for layer in BEAM_LAYERS):
            return result
        link = self.beam.rates(prediction)
        result.beam, result.scm = keep * link.rate_bps_hz, link.scm
        result.precoding = keep * self.precoding.rates(prediction).rate_bps_hz
        if self.csi.can_score(prediction):
            csi_score = self.csi.rates(prediction, pilot_overhead=rho)
            result.csi, result.csi_gain_loss_db = csi_score.rate_bps_hz, csi_score.gain_loss_db
        return result

    def method_rate_records(self, score: MethodScore, sets: UeSets) -> dict:
        """The rate entries of a ``results.json`` method record (None where the map cannot be scored)."""
        bounds = self.bounds
        return {
            "downlink_pilot_overhead": score.pilot_overhead,
            "rate": None if score.beam is None else summarize(score.beam, bounds["beam"], sets),
            "rate_precoding": None if score.precoding is None else summarize(score.precoding, bounds["precoding"], sets),
            "rate_adaptation": {**summarize(score.adaptation, bounds["adaptation"], sets,
                                            {"outage_fraction": score.outage.astype(float)}),
                                "margin_db": score.margin_db},
            "rate_csi_beamforming": None if score.csi is None else {
                **summarize(score.csi, bounds["csi"], sets, {"gain_loss_db_mean": score.csi_gain_loss_db}),
                "pilot_overhead": score.pilot_overhead},
        }

    def references(self, truth: xr.Dataset, seed: int) -> tuple[dict, MethodScore]:
        """The references: ``(name -> (per-UE rates, the bound they are a share of), the truth's MethodScore)``.

        The ground-truth map's margin is calibrated like every method's, on the calibration UEs; the truth
        sends no pilot. The beam sweep pays its sweep overhead, perfect CSI and the random beam none.
        """
        truth_score = self.score(truth, self.ue_sets(None))
        if truth_score.beam is None or truth_score.csi is None:
            raise CkmsimError("The ground-truth CKM lacks per-path layers: the references need them")
        bounds = self.bounds
        references = {
            "perfect_csi": (bounds["beam"], bounds["beam"]),
            "ground_truth_map": (truth_score.beam, bounds["beam"]),
            "perfect_csi_precoding": (bounds["precoding"], bounds["precoding"]),
            "perfect_statistics_precoding": (self.precoding.perfect_statistics_rates(), bounds["precoding"]),
            "ground_truth_map_precoding": (truth_score.precoding, bounds["precoding"]),
            "ground_truth_map_adaptation": (truth_score.adaptation, bounds["adaptation"]),
            "perfect_csi_beamforming": (bounds["csi"], bounds["csi"]),
            "beam_sweep": (self.csi.scorer.beam_sweep_rates(), bounds["csi"]),
            "random_beam": (self.csi.scorer.random_beam_rates(seed), bounds["csi"]),
            "ground_truth_map_csi_beamforming": (truth_score.csi, bounds["csi"]),
        }
        return references, truth_score

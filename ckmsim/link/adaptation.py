"""Link adaptation from a channel-gain map: the map sets the rate, the true channel decides if it gets through.

Every CKM method predicts the channel gain, but not every one predicts path angles; this score applies to all
of them. The BS serves each UE with its best codebook beam (found by the beam training every link does) and
chooses the rate from the map alone:

.. math::
    \\hat{R} = \\log_2\\!\\left(1 + \\frac{P}{N}\\, N_\\mathrm{t}\\, \\hat{g}\\, 10^{-m/10}\\right)

with :math:`\\hat{g}` the predicted gain at the UE's cell, :math:`N_\\mathrm{t}` the array gain of a matched
beam and :math:`m` a back-off margin [dB]. The UE receives :math:`\\hat{R}` when the true channel supports
it (:math:`\\hat{R} \\le C`, the perfect-CSI rate of the best beam) and nothing otherwise (outage). An
optimistic map is punished by outages, a pessimistic one by a rate below :math:`C`. It is the Shannon-ideal
counterpart of MCS selection with a coded link.

A gain map describes the large-scale channel (the RadioMapSolver averages over the cell), while the link
sees the small-scale channel at the UE's position behind a codebook beam, which may be 10 dB or more away.
Every map therefore needs a back-off, and each map its own: a map that errs by 10 dB needs a larger one than
the ground truth. :func:`calibrate_margin_db` sets it the way an operator's outer-loop link adaptation would,
from outcomes it has seen: the smallest margin that keeps the map's outage at a target (10 %) on a set of
*calibration* UEs. Fairness needs those UEs disjoint from the UEs that are scored (``ues``): a margin fitted
on the scored UEs themselves would read their true channels. The evaluator (:mod:`ckmsim.eval.holdout`)
splits the UEs into calibration and test sets by seeded spatial blocks, calibrates every method's margin on
its own predictions at the calibration UEs it did not measure and scores only the test UEs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.validation import is_finite_number


@dataclass(frozen=True)
class AdaptationScore:
    """Per-UE outcome of map-driven rate selection.

    Attributes
    ----------
    rate_bps_hz : [num_ue], float64 — rate delivered (0 in outage) [bit/s/Hz]
    selected_bps_hz : [num_ue], float64 — rate the map chose [bit/s/Hz]
    outage : [num_ue], bool — the chosen rate exceeded what the true channel supports
    """

    rate_bps_hz: np.ndarray
    selected_bps_hz: np.ndarray
    outage: np.ndarray


def map_snr_db(beam_scorer: BeamSelectionScorer, ckm: xr.Dataset) -> np.ndarray:
    """Effective SNR a gain map predicts at every UE of ``beam_scorer`` with a matched beam:
    ``10 log10(P/N N_t g_map)`` [dB], no margin; ``[num_ue]`` float64."""
    if "gain_db" not in ckm:
        raise CkmsimError("CKM lacks 'gain_db': link adaptation needs the predicted channel gain")
    rows, cols = beam_scorer.ue_cells
    gain_db = np.asarray(ckm["gain_db"].values, dtype=np.float64)[rows, cols]
    bad = int(np.count_nonzero(~np.isfinite(gain_db)))
    if bad:
        raise CkmsimError(f"The predicted gain is NaN/inf at {bad} UE cell(s): a map must cover every UE")
    return 10.0 * np.log10(beam_scorer.budget.snr_scale * beam_scorer.array.num_ant) + gain_db


def calibrate_margin_db(beam_scorer: BeamSelectionScorer, ckm: xr.Dataset, target_outage: float = 0.1,
                        ues: np.ndarray | None = None) -> float:
    r"""Smallest back-off [dB] with which ``ckm``'s rate choices fail on at most ``target_outage`` of the
    calibration UEs ``ues``.

    A UE is in outage when :math:`\log_2(1 + \mathrm{SNR}_\mathrm{map} 10^{-m/10}) > C`, i.e. when
    :math:`m < 10\log_{10}\mathrm{SNR}_\mathrm{map} - 10\log_{10}(2^C - 1)`; the margin is the
    ``1 - target_outage`` quantile of that right-hand side over the calibration UEs, and never negative.
    Only the calibration UEs' map values and true rates are read, so the margin says nothing about the others.

    Input
    -----
    beam_scorer : BeamSelectionScorer — the UEs, their true best-beam rate :math:`C`
    ckm : CKM with ``gain_db`` — the map whose margin is calibrated (a method's own prediction)
    target_outage : float in (0, 1)
    ues : [num_ue] bool mask or int indices of the calibration UEs, or None (every UE: only for a map that
        is then scored on other UEs or scenes)
    """
    if not (is_finite_number(target_outage) and 0.0 < target_outage < 1.0):
        raise CkmsimError(f"target_outage must be in (0, 1). Received: target_outage={target_outage!r}")
    num_ue = len(beam_scorer.perfect_csi_rates())
    chosen = np.arange(num_ue) if ues is None else np.asarray(ues)
    if chosen.dtype == bool:
        if chosen.shape != (num_ue,):
            raise CkmsimError(f"ues must be a [{num_ue}] bool mask or UE indices. Received: ues.shape={chosen.shape}")
        chosen = np.flatnonzero(chosen)
    if chosen.size == 0:
        raise CkmsimError("ues selects no calibration UE: a margin needs at least one")
    capacity = beam_scorer.perfect_csi_rates()[chosen]
    with np.errstate(divide="ignore"):
        needed_db = map_snr_db(beam_scorer, ckm)[chosen] - 10.0 * np.log10(np.expm1(capacity * np.log(2.0)))
    return float(max(0.0, np.quantile(needed_db, 1.0 - target_outage)))


class RateAdaptationScorer:
    """Scores channel-gain maps by the rate they select for the UEs of a :class:`BeamSelectionScorer`.

    A :class:`~ckmsim.link.score.RateScorer`: ``rates(ckm)``, ``perfect_csi_rates()`` (the best beam's rate).

    Parameters
    ----------
    beam_scorer : BeamSelectionScorer
        Holds the true channels, the array, the budget and each UE's perfect-CSI rate :math:`C`.
    margin_db : float
        Back-off applied to the predicted SNR [dB], >= 0 (3 dB by default, a common link-adaptation margin).
    """

    def __init__(self, beam_scorer: BeamSelectionScorer, margin_db: float = 3.0):
        if not (is_finite_number(margin_db) and margin_db >= 0):
            raise CkmsimError(f"margin_db must be a number >= 0. Received: margin_db={margin_db!r}")
        self.margin_db = float(margin_db)
        self.beam_scorer = beam_scorer
        self.capacity_bps_hz = beam_scorer.perfect_csi_rates()

    @classmethod
    def calibrated(cls, beam_scorer: BeamSelectionScorer, ckm: xr.Dataset, ues: np.ndarray,
                   target_outage: float = 0.1) -> "RateAdaptationScorer":
        """The scorer of ``ckm`` with its own margin, :func:`calibrate_margin_db` on the calibration UEs ``ues``."""
        return cls(beam_scorer, calibrate_margin_db(beam_scorer, ckm, target_outage, ues))

    def perfect_csi_rates(self) -> np.ndarray:
        """Bound: the rate the true channel supports, :math:`C` (best codebook beam), ``[num_ue]`` [bit/s/Hz]."""
        return self.capacity_bps_hz

    def rates(self, ckm: xr.Dataset) -> AdaptationScore:
        """Delivered rates of the UEs when ``ckm['gain_db']`` chooses their rate."""
        snr_db = map_snr_db(self.beam_scorer, ckm) - self.margin_db
        selected = np.log2(1.0 + 10.0 ** (snr_db / 10.0))
        outage = selected > self.capacity_bps_hz
        return AdaptationScore(rate_bps_hz=np.where(outage, 0.0, selected), selected_bps_hz=selected, outage=outage)

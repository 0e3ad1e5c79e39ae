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


class RateAdaptationScorer:
    """Scores channel-gain maps by the rate they select for the UEs of a :class:`BeamSelectionScorer`.

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
        self.ue_cells = beam_scorer.ue_cells
        self.capacity_bps_hz = beam_scorer.perfect_csi_rates()
        self.snr_per_gain = beam_scorer.budget.snr_scale * beam_scorer.array.num_ant * 10 ** (-self.margin_db / 10)

    def rates(self, ckm: xr.Dataset) -> AdaptationScore:
        """Delivered rates of the UEs when ``ckm['gain_db']`` chooses their rate."""
        if "gain_db" not in ckm:
            raise CkmsimError("CKM lacks 'gain_db': link adaptation needs the predicted channel gain")
        rows, cols = self.ue_cells
        gain_db = np.asarray(ckm["gain_db"].values, dtype=np.float64)[rows, cols]
        bad = int(np.count_nonzero(~np.isfinite(gain_db)))
        if bad:
            raise CkmsimError(f"The predicted gain is NaN/inf at {bad} UE cell(s): a map must cover every UE")
        selected = np.log2(1.0 + self.snr_per_gain * 10.0 ** (gain_db / 10.0))
        outage = selected > self.capacity_bps_hz
        return AdaptationScore(rate_bps_hz=np.where(outage, 0.0, selected), selected_bps_hz=selected, outage=outage)

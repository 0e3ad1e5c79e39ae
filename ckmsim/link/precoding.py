"""SCM-based precoding: the principal eigenvector of the predicted SCM, not restricted to a codebook.

With :math:`\\hat{\\mathbf{R}}` the SCM a CKM predicts at the UE's cell (E-SRResNet eq. (6)), the unit-norm
precoder maximising the predicted average gain :math:`\\mathbf{f}^\\mathsf{H}\\hat{\\mathbf{R}}\\mathbf{f}
= \\mathbb{E}|\\mathbf{f}^\\mathsf{H}\\mathbf{h}|^2` is the eigenvector of its largest eigenvalue (Rayleigh
quotient). The true channel decides what it earns,

.. math::
    R = \\frac{1}{K}\\sum_{k} \\log_2\\!\\left(1 + \\mathrm{SNR}\\,|\\mathbf{f}^\\mathsf{H}\\mathbf{h}_k|^2\\right),

with the gain convention of :mod:`ckmsim.link.beams`. A DFT beam is one unit-norm vector among others, so
the eigen-precoder's *predicted* gain is never below the best codebook beam's; with a single path it is the
matched filter :math:`\\mathbf{a}/\\sqrt{N}` and collects the full array gain :math:`N` at any angle.

Bound (:meth:`SCMPrecodingScorer.perfect_csi_rates`, the scorer's own): perfect-CSI eigen-beamforming, on
every subcarrier the dominant eigenvector of :math:`\\mathbf{h}_k\\mathbf{h}_k^\\mathsf{H}`, i.e. maximum-ratio
transmission :math:`\\mathbf{f}_k = \\mathbf{h}_k/\\lVert\\mathbf{h}_k\\rVert`, gain :math:`\\lVert\\mathbf{h}_k\\rVert^2`.
By Cauchy-Schwarz no unit-norm precoder, wideband or per subcarrier, codebook or not, collects more on any
subcarrier, so it bounds every precoder UE by UE; for one path of gain :math:`|g|^2` it is
:math:`N|g|^2`. Precoding is reported as a share of this bound, not of the DFT-codebook bound of beam
selection (which an unconstrained precoder may exceed).

Reference (perfect statistics, :meth:`SCMPrecodingScorer.perfect_statistics_rates`): the principal
eigenvector of the *true* channel's sample covariance over the subcarriers,
:math:`\\mathbf{R}_\\mathrm{true} = \\frac{1}{K}\\sum_k \\mathbf{h}_k\\mathbf{h}_k^\\mathsf{H}`: the one wideband
precoder with the largest true average gain. It maximises the average gain, not the average of the log, so it
bounds map-driven precoding on average rather than UE by UE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ckmsim.link.beams import mean_log2_1p, precoder_rates, ue_batches
from ckmsim.link.score import BeamSelectionScorer


def principal_eigenvectors(scm: np.ndarray, ues_per_batch: int | None = None) -> np.ndarray:
    """Unit-norm eigenvector of the largest eigenvalue of each SCM.

    An all-zero SCM (the map knows nothing) gets the broadside beam :math:`\\mathbf{1}/\\sqrt{N}`, which is
    DFT beam 0 of :func:`~ckmsim.link.codebook.dft_codebook` (the convention of
    :func:`~ckmsim.link.beams.select_beams_from_scm`). The eigenvector's common phase is arbitrary and
    does not change any gain.

    Input
    -----
    scm : [num_ue, num_ant, num_ant], complex, Hermitian positive semi-definite
    ues_per_batch : int or None
        UEs per ``eigh`` call, to bound memory.

    Output
    ------
    precoders : [num_ue, num_ant], complex (the SCM's precision)
    """
    num_ue, num_ant, _ = scm.shape
    out = np.empty((num_ue, num_ant), dtype=np.result_type(scm.dtype, np.complex64))
    for part in ue_batches(num_ue, num_ant * num_ant, ues_per_batch):
        # eigh sorts eigenvalues ascending: the last column is the principal eigenvector
        eigenvalues, eigenvectors = np.linalg.eigh(scm[part])
        out[part] = eigenvectors[:, :, -1]
        empty = ~(eigenvalues[:, -1] > 0)
        out[part][empty] = 1.0 / np.sqrt(num_ant)
    return out


def sample_covariance(h: np.ndarray) -> np.ndarray:
    """Sample covariance over subcarriers, :math:`\\frac{1}{K}\\sum_k \\mathbf{h}_k\\mathbf{h}_k^\\mathsf{H}`.

    Input: h ``[num_ue, num_subcarriers, num_ant]``, complex.
    Output: ``[num_ue, num_ant, num_ant]``, complex128, Hermitian positive semi-definite.
    """
    h = np.asarray(h, dtype=np.complex128)
    # [num_ue, num_ant, num_subcarriers] @ [num_ue, num_subcarriers, num_ant]
    return np.matmul(np.swapaxes(h, -1, -2), h.conj()) / h.shape[1]


@dataclass(frozen=True)
class PrecodingScore:
    """Per-UE outcome of one map's SCM precoding.

    Attributes
    ----------
    rate_bps_hz : [num_ue], float64 — achievable rate on the true channel [bit/s/Hz]
    precoder : [num_ue, num_ant], complex128 — the unit-norm precoder (principal eigenvector)
    scm : [num_ue, num_ant, num_ant], complex128 — the predicted SCM that chose it
    """

    rate_bps_hz: np.ndarray
    precoder: np.ndarray
    scm: np.ndarray


class SCMPrecodingScorer:
    """Scores CKMs by the rate of their SCM's principal eigenvector on the UEs' true channels.

    A :class:`~ckmsim.link.score.RateScorer` on the UEs, channels, array and budget of a
    :class:`~ckmsim.link.score.BeamSelectionScorer`: ``rates(ckm)`` for a map, ``perfect_csi_rates()`` for
    its own bound (per-subcarrier eigen-beamforming / MRT on the true channel), ``perfect_statistics_rates()``
    for the wideband reference of the module docstring.

    Parameters
    ----------
    beam_scorer : BeamSelectionScorer
        Holds the true channels ``[num_ue, num_subcarriers, num_ant]``, the array and the budget.
    """

    def __init__(self, beam_scorer: BeamSelectionScorer):
        self.beam_scorer = beam_scorer
        self._perfect_statistics_rates = None
        self._perfect_csi_rates = None

    def rates(self, ckm: xr.Dataset) -> PrecodingScore:
        """Rates earned on the true channels by the principal eigenvectors of the CKM's SCMs."""
        scm = self.beam_scorer.predicted_scm(ckm)
        precoder = principal_eigenvectors(scm)
        rate = precoder_rates(self.beam_scorer.channels, precoder, self.beam_scorer.budget.snr_scale)
        return PrecodingScore(rate_bps_hz=rate, precoder=precoder, scm=scm)

    def perfect_csi_rates(self) -> np.ndarray:
        """Bound: eigen-beamforming (MRT) with the true channel on every subcarrier,
        :math:`\\frac{1}{K}\\sum_k\\log_2(1+\\mathrm{SNR}\\lVert\\mathbf{h}_k\\rVert^2)`; ``[num_ue]`` [bit/s/Hz]."""
        if self._perfect_csi_rates is None:
            channels = self.beam_scorer.channels
            # ||h_k||^2 in double: the largest eigenvalue of the rank-one h_k h_k^H
            power = np.empty(channels.shape[:2], dtype=np.float64)
            for part in ue_batches(channels.shape[0], channels.shape[1] * channels.shape[2]):
                power[part] = np.sum(np.abs(np.asarray(channels[part], dtype=np.complex128)) ** 2, axis=-1)
            self._perfect_csi_rates = mean_log2_1p(self.beam_scorer.budget.snr_scale * power, axis=1)
        return self._perfect_csi_rates

    def perfect_statistics_rates(self) -> np.ndarray:
        """Reference: eigen-precoder of the true sample covariance over subcarriers, ``[num_ue]`` [bit/s/Hz]."""
        if self._perfect_statistics_rates is None:
            channels = self.beam_scorer.channels
            num_ant = channels.shape[-1]
            precoder = np.empty((channels.shape[0], num_ant), dtype=np.complex128)
            # Batched so that the [num_ue, num_ant, num_ant] covariances never exist all at once
            for part in ue_batches(channels.shape[0], num_ant * num_ant):
                precoder[part] = principal_eigenvectors(sample_covariance(channels[part]))
            self._perfect_statistics_rates = precoder_rates(channels, precoder, self.beam_scorer.budget.snr_scale)
        return self._perfect_statistics_rates

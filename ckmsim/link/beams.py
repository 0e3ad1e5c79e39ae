"""Beam selection and the rate a chosen beam earns on a true channel."""

from __future__ import annotations

import numpy as np


def beamforming_gains(h: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """:math:`|\\mathbf{f}_b^\\mathsf{H}\\mathbf{h}_k|^2` for every UE, subcarrier and beam.

    Input: h ``[num_ue, num_subcarriers, num_ant]``; codebook ``[num_beams, num_ant]``.
    Output: ``[num_ue, num_subcarriers, num_beams]`` float64.
    """
    return np.abs(np.einsum("ukn,bn->ukb", h, codebook.conj())) ** 2


def rates_all_beams(h: np.ndarray, codebook: np.ndarray, snr_scale: float) -> np.ndarray:
    """Achievable rate of every beam, averaged over subcarriers [bit/s/Hz].

    .. math:: r_b = \\frac{1}{K}\\sum_{k} \\log_2\\left(1 + \\mathrm{SNR}\\, |\\mathbf{f}_b^\\mathsf{H}\\mathbf{h}_k|^2\\right)

    Input: h ``[num_ue, num_subcarriers, num_ant]``; codebook ``[num_beams, num_ant]``; snr_scale (linear).
    Output: ``[num_ue, num_beams]`` float64.
    """
    return np.log2(1.0 + snr_scale * beamforming_gains(h, codebook)).mean(axis=1)


def select_beams_from_scm(scm: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Beam maximising the predicted average gain :math:`\\mathbf{f}^\\mathsf{H}\\hat{\\mathbf{R}}\\mathbf{f}`.

    Input: scm ``[num_ue, num_ant, num_ant]``; codebook ``[num_beams, num_ant]``.
    Output: ``[num_ue]`` int beam indices (beam 0 where the SCM is all zero: the map knows nothing).
    """
    predicted_gain = np.einsum("bm,umn,bn->ub", codebook.conj(), scm, codebook).real
    return np.argmax(predicted_gain, axis=1)

"""Beam selection and the rate a chosen beam or precoder earns on a true channel.

Convention: ``h`` is the channel vector at the BS array (the uplink vector of E-SRResNet eq. (1), see
:func:`ckmsim.link.channels.ofdm_channels`) and a beam ``f`` (a codebook row) earns the gain
:math:`|\\mathbf{f}^\\mathsf{H}\\mathbf{h}|^2`; by reciprocity the downlink precoder :math:`\\mathbf{f}^*`
sees the same gain.

The kernels are batched over UEs (one BLAS matrix product per batch of UEs, no loop over UEs or beams) so that
the ``[num_ue, num_subcarriers, num_beams]`` intermediate never has to fit in memory at once. They compute in
the precision of ``precision`` (``"single"``: complex64/float32, ``"double"``: complex128/float64; ``None``:
what the inputs promote to, e.g. double for complex64 channels and a complex128 codebook) and return float64.
"""

from __future__ import annotations

import numpy as np

from ckmsim.errors import CkmsimError

#: Intermediate elements ``[ues * num_subcarriers * num_beams]`` per batch: ~16 MB of complex64. Smaller
#: batches keep the elementwise work closer to the cache but pay BLAS's thread start-up once per product,
#: which costs dearly on a loaded machine (4x slower at 64 UEs per batch than at 256-512 on 2 busy cores).
BATCH_ELEMENTS = 2 ** 21


def complex_dtype(precision: str | None, *arrays: np.ndarray) -> np.dtype:
    """Complex dtype of a computation: ``"single"`` -> complex64, ``"double"`` -> complex128, ``None`` -> the
    complex type ``arrays`` promote to under numpy's rules (complex64 only if every input is single)."""
    if precision is None:
        return np.result_type(np.complex64, *(np.asarray(a).dtype for a in arrays))
    if precision == "single":
        return np.dtype(np.complex64)
    if precision == "double":
        return np.dtype(np.complex128)
    raise CkmsimError(f"precision must be 'single', 'double' or None. Received: precision={precision!r}")


def ue_batches(num_ue: int, elements_per_ue: int, ues_per_batch: int | None = None):
    """Slices over ``num_ue`` UEs with at most ``ues_per_batch`` UEs each (by default
    :data:`BATCH_ELEMENTS` / ``elements_per_ue``, at least one)."""
    if ues_per_batch is None:
        ues_per_batch = max(1, BATCH_ELEMENTS // max(1, int(elements_per_ue)))
    elif int(ues_per_batch) != ues_per_batch or ues_per_batch < 1:
        raise CkmsimError(f"ues_per_batch must be a positive integer. Received: ues_per_batch={ues_per_batch!r}")
    for start in range(0, num_ue, int(ues_per_batch)):
        yield slice(start, min(start + int(ues_per_batch), num_ue))


def squared_magnitude(x: np.ndarray) -> np.ndarray:
    """:math:`|x|^2` elementwise: ``[...]`` complex -> ``[...]`` real of the same precision.

    ``np.abs`` then an in-place square: two vectorised passes, no complex temporaries.
    """
    power = np.abs(x)
    return np.square(power, out=power)


def beamforming_gains(h: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """:math:`|\\mathbf{f}_b^\\mathsf{H}\\mathbf{h}_k|^2` for every UE, subcarrier and beam.

    Input
    -----
    h : [..., num_subcarriers, num_ant], complex
    codebook : [num_beams, num_ant], complex

    Output
    ------
    gains : [..., num_subcarriers, num_beams], float (float64 unless both inputs are single precision)
    """
    return squared_magnitude(np.asarray(h) @ np.asarray(codebook).conj().T)


def mean_beam_gains(h: np.ndarray, codebook: np.ndarray, precision: str | None = None,
                    ues_per_batch: int | None = None) -> np.ndarray:
    """Subcarrier-averaged gain of every beam, :math:`\\frac{1}{K}\\sum_k |\\mathbf{f}_b^\\mathsf{H}\\mathbf{h}_k|^2`.

    Input
    -----
    h : [num_ue, num_subcarriers, num_ant], complex
    codebook : [num_beams, num_ant], complex
    precision : None | "single" | "double"
    ues_per_batch : int or None

    Output
    ------
    gains : [num_ue, num_beams], float64
    """
    dtype = complex_dtype(precision, h, codebook)
    num_ue, num_subcarriers, num_ant = h.shape
    # [num_ant, num_beams]: f^H h_k for all beams is one product h @ conj(F)^T
    combiner = np.ascontiguousarray(np.asarray(codebook).conj().T, dtype=dtype)
    out = np.empty((num_ue, combiner.shape[1]), dtype=np.float64)
    for part in ue_batches(num_ue, num_subcarriers * combiner.shape[1], ues_per_batch):
        # [batch * num_subcarriers, num_beams]
        power = squared_magnitude(np.asarray(h[part], dtype=dtype).reshape(-1, num_ant) @ combiner)
        out[part] = power.reshape(-1, num_subcarriers, combiner.shape[1]).mean(axis=1)
    return out


def mean_log2_1p(snr: np.ndarray, axis: int) -> np.ndarray:
    """:math:`\\frac{1}{K}\\sum_k \\log_2(1 + \\mathrm{snr}_k)` over ``axis``, overwriting ``snr`` (a
    temporary of the caller): the natural log runs in place and the 1/ln 2 is applied to the mean."""
    snr += 1.0
    np.log(snr, out=snr)
    return snr.mean(axis=axis) / np.log(2.0)


def rates_all_beams(h: np.ndarray, codebook: np.ndarray, snr_scale: float, precision: str | None = None,
                    ues_per_batch: int | None = None) -> np.ndarray:
    """Achievable rate of every beam, averaged over subcarriers [bit/s/Hz].

    .. math:: r_b = \\frac{1}{K}\\sum_{k} \\log_2\\left(1 + \\mathrm{SNR}\\, |\\mathbf{f}_b^\\mathsf{H}\\mathbf{h}_k|^2\\right)

    Input
    -----
    h : [num_ue, num_subcarriers, num_ant], complex
    codebook : [num_beams, num_ant], complex
    snr_scale : float, linear SNR of a unit-gain channel (:attr:`LinkBudget.snr_scale`)
    precision : None | "single" | "double"
    ues_per_batch : int or None

    Output
    ------
    rates : [num_ue, num_beams], float64
    """
    dtype = complex_dtype(precision, h, codebook)
    num_ue, num_subcarriers, num_ant = h.shape
    # sqrt(SNR) folded into the beams: |(sqrt(SNR) f)^H h|^2 is the SNR, with no extra pass over the products
    combiner = np.ascontiguousarray(np.sqrt(snr_scale) * np.asarray(codebook).conj().T, dtype=dtype)
    out = np.empty((num_ue, combiner.shape[1]), dtype=np.float64)
    for part in ue_batches(num_ue, num_subcarriers * combiner.shape[1], ues_per_batch):
        # [batch * num_subcarriers, num_beams]
        snr = squared_magnitude(np.asarray(h[part], dtype=dtype).reshape(-1, num_ant) @ combiner)
        out[part] = mean_log2_1p(snr.reshape(-1, num_subcarriers, combiner.shape[1]), axis=1)
    return out


def precoder_gains(h: np.ndarray, precoders: np.ndarray) -> np.ndarray:
    """:math:`|\\mathbf{f}_u^\\mathsf{H}\\mathbf{h}_{u,k}|^2` of one precoder per UE on every subcarrier.

    Input
    -----
    h : [num_ue, num_subcarriers, num_ant], complex
    precoders : [num_ue, num_ant], complex, unit norm

    Output
    ------
    gains : [num_ue, num_subcarriers], float64
    """
    # [num_ue, num_subcarriers]: f_u^H h_uk; einsum streams h once with no temporary
    response = np.einsum("ukn,un->uk", h, np.asarray(precoders).conj())
    return squared_magnitude(response).astype(np.float64)


def precoder_rates(h: np.ndarray, precoders: np.ndarray, snr_scale: float) -> np.ndarray:
    """Rate of one precoder per UE, :math:`\\frac{1}{K}\\sum_k\\log_2(1+\\mathrm{SNR}|\\mathbf{f}_u^\\mathsf{H}\\mathbf{h}_{u,k}|^2)`.

    Input: h ``[num_ue, num_subcarriers, num_ant]``; precoders ``[num_ue, num_ant]``; snr_scale (linear).
    Output: ``[num_ue]`` float64 [bit/s/Hz].
    """
    return mean_log2_1p(snr_scale * precoder_gains(h, precoders), axis=1)


def select_beams_from_scm(scm: np.ndarray, codebook: np.ndarray, ues_per_batch: int | None = None) -> np.ndarray:
    """Beam maximising the predicted average gain :math:`\\mathbf{f}^\\mathsf{H}\\hat{\\mathbf{R}}\\mathbf{f}`.

    Input
    -----
    scm : [num_ue, num_ant, num_ant], complex (its precision is that of the products)
    codebook : [num_beams, num_ant], complex
    ues_per_batch : int or None

    Output
    ------
    beam : [num_ue], int, beam indices (beam 0 where the SCM is all zero: the map knows nothing)
    """
    # The SCM's precision (complex64 SCMs stay single: a complex128 codebook would promote every product)
    codebook = np.asarray(codebook).astype(np.result_type(scm.dtype, np.complex64), copy=False)
    num_ue, num_ant, _ = scm.shape
    beams = np.empty(num_ue, dtype=np.int64)
    for part in ue_batches(num_ue, num_ant * codebook.shape[0], ues_per_batch):
        # [batch * num_ant, num_ant] @ [num_ant, num_beams] -> [batch, num_ant, num_beams]: R f_b for every UE
        # and beam as one large product (a stack of small ones pays BLAS's threading overhead per matrix)
        r_f = (scm[part].reshape(-1, num_ant) @ codebook.T).reshape(-1, num_ant, codebook.shape[0])
        # [batch, num_beams]: f_b^H (R f_b)
        predicted_gain = np.einsum("nb,unb->ub", codebook.conj().T, r_f).real
        beams[part] = np.argmax(predicted_gain, axis=1)
    return beams

"""CSI-based beamforming from predicted downlink CSI, scored on the true CSI (LAD-CKM eqs. (9)-(11)).

A location-agnostic CKM (LAD-CKM, NeRF2, FIRE) predicts the downlink CSI :math:`\\hat{\\mathbf{H}}^\\mathrm{D}(f)`
of a UE. The BS precoder :math:`\\mathbf{f}` and the UE combiner :math:`\\mathbf{w}` are the codebook pair with
the largest predicted gain averaged over the :math:`N_c` subcarriers, eq. (10):

.. math::
    (\\mathbf{w}_*, \\mathbf{f}_*) = \\arg\\max_{\\mathbf{f}\\in\\mathcal{F},\\,\\mathbf{w}\\in\\mathcal{W}}
    \\frac{1}{N_c}\\sum_f |\\mathbf{w}^\\mathsf{H}\\hat{\\mathbf{H}}^\\mathrm{D}(f)\\mathbf{f}|^2,

and the true channel decides the effective rate, eq. (11):

.. math::
    R = \\frac{1-\\rho}{N_c}\\sum_f \\log_2\\!\\left(1 + \\gamma\\,|\\mathbf{w}_*^\\mathsf{H}\\mathbf{H}^\\mathrm{D}(f)\\mathbf{f}_*|^2\\right),

with :math:`\\gamma = P/\\sigma^2` the transmit SNR (:attr:`LinkBudget.snr_scale` when ``H`` carries the path
loss) and :math:`\\rho` the pilot overhead of the scheme (LAD-CKM: 0.125 with partial downlink pilots, 0
without). Codebook rows are used as :math:`\\mathbf{f}` and :math:`\\mathbf{w}` directly (eq. (9):
:math:`y = \\mathbf{w}^\\mathsf{H}\\mathbf{H}\\mathbf{f}x + \\mathbf{w}^\\mathsf{H}\\mathbf{n}`); a DFT grid holds the
conjugate of each of its beams, so this is the same set of gains as the uplink convention of
:mod:`ckmsim.link.beams`.

References of :class:`CsiBeamformingScorer`, all on the same true channels:

- **perfect CSI** (the paper's upper bound with the codebooks): eq. (10) with :math:`\\hat{\\mathbf{H}} = \\mathbf{H}`,
  no pilot cost (:math:`\\rho = 0`). Its pair has the largest true *average gain* on every UE (so every
  prediction's gain loss is >= 0); eq. (10) does not maximise the *rate* (the log is concave), so a
  prediction may earn a hair more than it on a UE, and bounds hold for the rate on average;
- **beam sweep** (no map): every pair is measured on the true channel and the best one kept — the pair of
  perfect CSI — paying the sweep's overhead :func:`sweep_overhead`,
  :math:`\\rho_\\mathrm{sweep} = N_\\mathrm{pairs} \\cdot S_\\mathrm{pilot} / S_\\mathrm{coh}` (pilot symbols per pair
  times the number of pairs, over the symbols of a coherence block; all of the band is used by a pair's pilot);
- **random beam** (no map, no training): a uniformly drawn pair, :math:`\\rho = 0`;
- **unconstrained**: no codebook, the dominant eigenmode of every subcarrier (the single-stream bound).

Every kernel is vectorised over UEs, subcarriers and beams (BLAS products over batches of UEs that bound
the memory of the ``[ue, subcarrier, beam]`` intermediate); there is no Python loop over UEs or beams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.link.beams import complex_dtype, mean_log2_1p, squared_magnitude, ue_batches
from ckmsim.validation import check_fraction, is_finite_number, is_whole_number

#: Default OFDM symbols per coherence block of the beam sweep's overhead: 4 ms of LAD-CKM's 312.5 kHz
#: numerology (3.2 us + 0.8 us cyclic prefix per symbol), the coherence time of a UE at about 17 km/h at
#: 6.765 GHz (0.423 / Doppler). A parameter, not a constant of nature: pass your own.
DEFAULT_COHERENCE_SYMBOLS = 1000


def _check_channels(h: np.ndarray, name: str) -> np.ndarray:
    h = np.asarray(h)
    if h.ndim != 4 or not np.iscomplexobj(h):
        raise CkmsimError(f"{name} must be complex CSI [num_ue, num_subcarriers, num_ue_ant, num_bs_ant]. "
                          f"Received: {name}.shape={h.shape}, dtype={h.dtype}")
    return h


def _check_codebook(codebook: np.ndarray, num_ant: int, name: str) -> np.ndarray:
    codebook = np.asarray(codebook)
    if codebook.ndim != 2 or codebook.shape[1] != num_ant or codebook.shape[0] < 1:
        raise CkmsimError(f"{name} must be [num_beams, {num_ant}] (one beam per row). "
                          f"Received: {name}.shape={codebook.shape}")
    return codebook


def pair_gains(h: np.ndarray, bs_codebook: np.ndarray, ue_codebook: np.ndarray, precision: str | None = None,
               ues_per_batch: int | None = None) -> np.ndarray:
    """Objective of eq. (10) for every pair: :math:`\\frac{1}{N_c}\\sum_f |\\mathbf{w}_s^\\mathsf{H}\\mathbf{H}(f)\\mathbf{f}_b|^2`.

    Input
    -----
    h : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex
    bs_codebook : [num_bs_beams, num_bs_ant], complex
    ue_codebook : [num_ue_beams, num_ue_ant], complex
    precision : None | "single" | "double" (``None``: what ``h`` and the codebooks promote to)
    ues_per_batch : int or None

    Output
    ------
    gains : [num_ue, num_ue_beams, num_bs_beams], float64
    """
    dtype = complex_dtype(precision, h, bs_codebook, ue_codebook)
    num_ue, num_subcarriers, num_ue_ant, num_bs_ant = h.shape
    num_bs_beams, num_ue_beams = bs_codebook.shape[0], ue_codebook.shape[0]
    # [num_bs_ant, num_bs_beams]: H f for every BS beam is one product H @ F^T
    precoders = np.ascontiguousarray(np.asarray(bs_codebook).T, dtype=dtype)
    combiners = np.asarray(ue_codebook).conj().astype(dtype)
    out = np.empty((num_ue, num_ue_beams, num_bs_beams), dtype=np.float64)
    # The larger of the two products' outputs, [K, N_r, B_t] or [K, B_r, B_t], sets the batch
    per_ue = num_subcarriers * max(num_ue_ant, num_ue_beams) * num_bs_beams
    for part in ue_batches(num_ue, per_ue, ues_per_batch):
        # [batch * num_subcarriers * num_ue_ant, num_bs_beams]
        hf = np.asarray(h[part], dtype=dtype).reshape(-1, num_bs_ant) @ precoders
        if num_ue_ant == 1:
            # With one UE antenna w is a scalar: |w^* H f|^2 = |w|^2 |H f|^2, no second product needed
            power = squared_magnitude(hf).reshape(-1, num_subcarriers, num_bs_beams).mean(axis=1)
            out[part] = squared_magnitude(combiners[:, 0])[None, :, None] * power[:, None, :]
            continue
        # [num_ue_beams, batch * num_subcarriers, num_bs_beams]: w^H (H f)
        whf = np.tensordot(combiners, hf.reshape(-1, num_ue_ant, num_bs_beams), axes=([1], [1]))
        power = squared_magnitude(whf).reshape(num_ue_beams, -1, num_subcarriers, num_bs_beams).mean(axis=2)
        # [num_ue_beams, batch, num_bs_beams] -> [batch, num_ue_beams, num_bs_beams]
        out[part] = np.transpose(power, (1, 0, 2))
    return out


def select_beam_pairs(h_pred: np.ndarray, bs_codebook: np.ndarray, ue_codebook: np.ndarray,
                      precision: str | None = None, ues_per_batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eq. (10): the (BS beam, UE beam) pair with the largest predicted subcarrier-averaged gain.

    Input: as :func:`pair_gains`, with the predicted CSI ``h_pred``.
    Output: ``(bs_beam, ue_beam)``, each ``[num_ue]`` int (ties and all-zero CSI: the lowest pair index,
    ``ue_beam * num_bs_beams + bs_beam``).
    """
    gains = pair_gains(h_pred, bs_codebook, ue_codebook, precision, ues_per_batch)
    # [num_ue, num_ue_beams * num_bs_beams], UE beam major
    best = np.argmax(gains.reshape(gains.shape[0], -1), axis=1)
    ue_beam, bs_beam = np.divmod(best, gains.shape[2])
    return bs_beam, ue_beam


def beam_pair_gains(h: np.ndarray, precoders: np.ndarray, combiners: np.ndarray,
                    precision: str | None = None) -> np.ndarray:
    """:math:`|\\mathbf{w}_u^\\mathsf{H}\\mathbf{H}_u(f)\\mathbf{f}_u|^2` of one pair per UE on every subcarrier.

    Input
    -----
    h : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex
    precoders : [num_ue, num_bs_ant], complex
    combiners : [num_ue, num_ue_ant], complex
    precision : None | "single" | "double"

    Output
    ------
    gains : [num_ue, num_subcarriers], float64
    """
    dtype = complex_dtype(precision, h, precoders, combiners)
    # einsum's contraction loop streams H once with no temporary; it beats a stack of per-UE gemv calls
    # [num_ue, num_subcarriers, num_ue_ant]: H f
    hf = np.einsum("ukrt,ut->ukr", np.asarray(h, dtype=dtype), np.asarray(precoders, dtype=dtype))
    # [num_ue, num_subcarriers]: w^H (H f)
    whf = np.einsum("ukr,ur->uk", hf, np.asarray(combiners, dtype=dtype).conj())
    return squared_magnitude(whf).astype(np.float64)


def effective_rates(gains: np.ndarray, snr_scale: float, pilot_overhead: float = 0.0) -> np.ndarray:
    """Eq. (11): :math:`\\frac{1-\\rho}{N_c}\\sum_f \\log_2(1 + \\gamma g_f)` [bit/s/Hz].

    Input: gains ``[num_ue, num_subcarriers]`` (:math:`|\\mathbf{w}^\\mathsf{H}\\mathbf{H}\\mathbf{f}|^2`);
    snr_scale :math:`\\gamma` (linear); pilot_overhead :math:`\\rho \\in [0, 1]`.
    Output: ``[num_ue]`` float64.
    """
    rho = check_fraction(pilot_overhead, "pilot_overhead")
    return (1.0 - rho) * mean_log2_1p(snr_scale * np.asarray(gains, dtype=np.float64), axis=1)


def effective_snr_db(gains: np.ndarray, snr_scale: float) -> np.ndarray:
    """Capacity-equivalent effective SNR [dB]: the SNR of a flat channel with the same rate as the
    frequency-selective one, :math:`10\\log_{10}(2^{R_0} - 1)` with :math:`R_0` eq. (11) at :math:`\\rho = 0`.

    Input: gains ``[num_ue, num_subcarriers]``; snr_scale (linear). Output: ``[num_ue]`` float64 (-inf
    where the channel is zero).
    """
    return _rate_to_snr_db(effective_rates(gains, snr_scale, 0.0))


def _rate_to_snr_db(rate_bps_hz: np.ndarray) -> np.ndarray:
    """Inverse of the flat-channel capacity: :math:`10\\log_{10}(2^R - 1)` [dB]."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.expm1(rate_bps_hz * np.log(2.0)))


def sweep_overhead(num_pairs: int, pilot_symbols_per_pair: int = 1,
                   coherence_symbols: int = DEFAULT_COHERENCE_SYMBOLS) -> float:
    """Pilot overhead of an exhaustive beam sweep, :math:`\\rho_\\mathrm{sweep} = N_\\mathrm{pairs} S_\\mathrm{pilot} / S_\\mathrm{coh}`.

    Each (BS beam, UE beam) pair is sounded with ``pilot_symbols_per_pair`` OFDM symbols over the whole
    band, once per coherence block of ``coherence_symbols`` symbols. Can exceed 1: the sweep then does not
    fit in a block (its rate is 0).
    """
    for name, value in (("num_pairs", num_pairs), ("pilot_symbols_per_pair", pilot_symbols_per_pair),
                        ("coherence_symbols", coherence_symbols)):
        if not is_whole_number(value, minimum=1):
            raise CkmsimError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return float(num_pairs) * float(pilot_symbols_per_pair) / float(coherence_symbols)


@dataclass(frozen=True)
class CsiBeamformingScore:
    """Per-UE outcome of beamforming driven by one predicted CSI.

    Attributes
    ----------
    rate_bps_hz : [num_ue], float64 — eq. (11) on the true CSI, pilot overhead included [bit/s/Hz]
    bs_beam, ue_beam : [num_ue], int — the pair of eq. (10) chosen on the predicted CSI
    effective_snr_db : [num_ue], float64 — capacity-equivalent SNR of the chosen pair (before overhead) [dB]
    gain_loss_db : [num_ue], float64 — true average gain of the perfect-CSI pair over that of the chosen
        pair [dB], >= 0 up to rounding (0 where both pick the same pair)
    """

    rate_bps_hz: np.ndarray
    bs_beam: np.ndarray
    ue_beam: np.ndarray
    effective_snr_db: np.ndarray
    gain_loss_db: np.ndarray


class CsiBeamformingScorer:
    """Scores predicted downlink CSI by the rate its beam pair earns on the true downlink CSI (eqs. (10)-(11)).

    Built once from the true CSI of the UEs (it finds the perfect-CSI pairs); ``rates(h_pred)`` scores a
    prediction, the other methods are the references of the module docstring. A
    :class:`~ckmsim.link.score.RateScorer` whose prediction is CSI.

    Parameters
    ----------
    h_true : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex
        True downlink CSI (e.g. :func:`ckmsim.link.channels.mimo_ofdm_channels` or ``trace_csi``'s ``h_dl``).
    snr_scale : float
        Transmit SNR :math:`\\gamma` (linear), e.g. :attr:`LinkBudget.snr_scale`.
    bs_codebook : [num_bs_beams, num_bs_ant], complex
        :math:`\\mathcal{F}`, e.g. ``dft_codebook(bs_array)``.
    ue_codebook : [num_ue_beams, num_ue_ant], complex, or None
        :math:`\\mathcal{W}`; ``None`` only for a single-antenna UE (the codebook ``[[1]]``).
    precision : None | "single" | "double"
        Precision of the products (``None``: what the CSI and the codebooks promote to; DFT codebooks are
        complex128, so pass ``"single"`` for speed on complex64 CSI).
    ues_per_batch : int or None
        UEs per batch of the pair search (memory bound); ``None``: :data:`ckmsim.link.beams.BATCH_ELEMENTS`
        products per batch.
    """

    def __init__(self, h_true: np.ndarray, snr_scale: float, bs_codebook: np.ndarray,
                 ue_codebook: np.ndarray | None = None, precision: str | None = None,
                 ues_per_batch: int | None = None):
        self.h_true = _check_channels(h_true, "h_true")
        num_ue_ant, num_bs_ant = self.h_true.shape[2:]
        if ue_codebook is None:
            if num_ue_ant != 1:
                raise CkmsimError("A UE codebook is needed for a multi-antenna UE. "
                                  f"Received: ue_codebook=None, num_ue_ant={num_ue_ant}")
            ue_codebook = np.ones((1, 1), dtype=np.complex128)
        if not (is_finite_number(snr_scale) and snr_scale > 0):
            raise CkmsimError(f"snr_scale must be a number > 0 (linear). Received: snr_scale={snr_scale!r}")
        self.snr_scale = float(snr_scale)
        self.bs_codebook = _check_codebook(bs_codebook, num_bs_ant, "bs_codebook")
        self.ue_codebook = _check_codebook(ue_codebook, num_ue_ant, "ue_codebook")
        self.precision = precision
        complex_dtype(precision)  # validates precision now rather than at the first score
        self.ues_per_batch = ues_per_batch
        self.perfect_bs_beam, self.perfect_ue_beam = self._select(self.h_true)
        # [num_ue, num_subcarriers]: true gains of the perfect-CSI pair, the reference of every gain loss
        self.perfect_gains = self._true_gains(self.perfect_bs_beam, self.perfect_ue_beam)

    @property
    def num_pairs(self) -> int:
        """Number of (BS beam, UE beam) pairs."""
        return self.bs_codebook.shape[0] * self.ue_codebook.shape[0]

    def _select(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return select_beam_pairs(h, self.bs_codebook, self.ue_codebook, self.precision, self.ues_per_batch)

    def _true_gains(self, bs_beam: np.ndarray, ue_beam: np.ndarray) -> np.ndarray:
        return beam_pair_gains(self.h_true, self.bs_codebook[bs_beam], self.ue_codebook[ue_beam], self.precision)

    def rates(self, h_pred: np.ndarray, pilot_overhead: float = 0.0) -> CsiBeamformingScore:
        """Eq. (11) on the true CSI for the pairs that the predicted CSI selects with eq. (10).

        Input
        -----
        h_pred : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex — predicted downlink CSI
        pilot_overhead : float in [0, 1] — :math:`\\rho` of the scheme that produced ``h_pred``

        Output
        ------
        score : CsiBeamformingScore (rates, chosen pairs, effective SNR, gain loss vs perfect CSI)
        """
        rho = check_fraction(pilot_overhead, "pilot_overhead")
        h_pred = _check_channels(h_pred, "h_pred")
        if h_pred.shape != self.h_true.shape:
            raise CkmsimError(f"h_pred must have the shape of h_true {self.h_true.shape}. "
                              f"Received: h_pred.shape={h_pred.shape}")
        bs_beam, ue_beam = self._select(h_pred)
        gains = self._true_gains(bs_beam, ue_beam)
        with np.errstate(divide="ignore", invalid="ignore"):
            loss_db = 10.0 * np.log10(self.perfect_gains.mean(axis=1) / gains.mean(axis=1))
        # A UE without any channel loses nothing whatever it chooses
        loss_db = np.where(self.perfect_gains.mean(axis=1) > 0, loss_db, 0.0)
        rate_no_overhead = effective_rates(gains, self.snr_scale, 0.0)
        return CsiBeamformingScore(rate_bps_hz=(1.0 - rho) * rate_no_overhead, bs_beam=bs_beam, ue_beam=ue_beam,
                                   effective_snr_db=_rate_to_snr_db(rate_no_overhead), gain_loss_db=loss_db)

    def perfect_csi_rates(self) -> np.ndarray:
        """Upper bound with the codebooks: eq. (10) on the true CSI, :math:`\\rho = 0`; ``[num_ue]`` [bit/s/Hz]."""
        return effective_rates(self.perfect_gains, self.snr_scale, 0.0)

    def beam_sweep_rates(self, pilot_symbols_per_pair: int = 1,
                         coherence_symbols: int = DEFAULT_COHERENCE_SYMBOLS) -> np.ndarray:
        """No map: exhaustive sweep of all pairs on the true channel, paying :func:`sweep_overhead`.

        The sweep measures every pair's average received power and keeps the best, i.e. the perfect-CSI
        pair; its rate is :math:`\\max(0, 1 - \\rho_\\mathrm{sweep})` times the perfect-CSI rate.
        Output: ``[num_ue]`` float64 [bit/s/Hz].
        """
        rho = sweep_overhead(self.num_pairs, pilot_symbols_per_pair, coherence_symbols)
        return effective_rates(self.perfect_gains, self.snr_scale, min(rho, 1.0))

    def random_beam_rates(self, seed=0) -> np.ndarray:
        """No map, no training: a uniformly drawn pair per UE, :math:`\\rho = 0`.

        Input: seed, an int or a ``np.random.Generator``. Output: ``[num_ue]`` float64 [bit/s/Hz].
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        num_ue = self.h_true.shape[0]
        bs_beam = rng.integers(self.bs_codebook.shape[0], size=num_ue)
        ue_beam = rng.integers(self.ue_codebook.shape[0], size=num_ue)
        return effective_rates(self._true_gains(bs_beam, ue_beam), self.snr_scale, 0.0)

    def unconstrained_rates(self) -> np.ndarray:
        """Single-stream bound without codebooks: on every subcarrier the dominant singular pair of
        :math:`\\mathbf{H}(f)`, gain :math:`\\sigma_\\max^2(\\mathbf{H}(f))`; :math:`\\rho = 0`.

        Output: ``[num_ue]`` float64 [bit/s/Hz]. Never decreases when antennas are added to either array
        (a sub-array's singular values interlace the full array's).
        """
        h = np.asarray(self.h_true, dtype=complex_dtype(self.precision, self.h_true))
        # [num_ue, num_subcarriers, num_ue_ant, num_ue_ant]: H H^H, the smaller Gram matrix when N_r <= N_t
        gram = np.matmul(h, np.conj(np.swapaxes(h, -1, -2)))
        gains = np.linalg.eigvalsh(gram)[..., -1]
        return effective_rates(np.maximum(gains, 0.0), self.snr_scale, 0.0)

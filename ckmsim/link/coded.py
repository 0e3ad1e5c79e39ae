"""Coded link with map-driven MCS selection: the map picks the MCS, the true channel decides the BLER.

This is the coded, MCS-based counterpart of :mod:`ckmsim.link.adaptation`. Each UE is served over its
beamformed (effective) frequency-domain channel :math:`h_k = \\mathbf{w}^\\mathsf{H}\\mathbf{H}_k\\mathbf{f}`,
one complex scalar per subcarrier :math:`k = 0..K-1`. A codeword of :math:`N` QAM symbols (resource elements)
is sent with symbol :math:`j` of codeword :math:`c` on subcarrier :math:`(cN + j) \\bmod K` (the codewords
cycle over the band, so every codeword sees the band's selectivity):

.. math::
    y_{c,j} = \\sqrt{\\rho}\\, h_{(cN+j) \\bmod K}\\, x_{c,j} + n_{c,j}, \\qquad n_{c,j} \\sim \\mathcal{CN}(0, 1),
    \\qquad \\mathbb{E}|x|^2 = 1                                                                              (1)

with :math:`\\rho` the link budget's ``snr_scale``, so the per-subcarrier SNR is
:math:`\\gamma_k = \\rho |h_k|^2` as in :class:`~ckmsim.link.budget.LinkBudget`. The chain is Sionna PHY:
5G NR LDPC (38.212, ``LDPC5GEncoder`` with its rate matching and bit interleaver) -> Gray QAM ``Mapper``
-> (1) -> per-symbol equalisation with perfect CSI -> APP ``Demapper`` with per-symbol noise variance
:math:`1/\\gamma_k` -> belief-propagation ``LDPC5GDecoder`` (flooding, boxplus-phi). A codeword is in error
when any of its decoded information bits differs (genie error detection, no CRC).

**MCS** (:class:`McsTable`): 3GPP TS 38.214 Table 5.1.3.1-1 (PDSCH, up to 64-QAM) by default, via Sionna's
``decode_mcs_index``. MCS ``m`` has modulation order :math:`Q_m`, target code rate :math:`R_m` and spectral
efficiency :math:`\\mathrm{SE}_m = Q_m R_m` [bit/s/Hz], the table's own column. A codeword carries
:math:`n = N Q_m` coded and :math:`k = \\lfloor R_m n \\rfloor` information bits. Below the 5G mother-code rate
1/5 (MCS 0-2 of Table 1) the LDPC codeword of length :math:`5k` is repeated cyclically up to :math:`n` and the
receiver adds the repeated LLRs, as NR's circular-buffer rate matching does.

**Effective SNR** (:func:`effective_snr_db`): the AWGN thresholds apply to a frequency-selective channel
through an effective SNR per UE and MCS. The default is the exponential effective SINR mapping (EESM)

.. math::
    \\gamma_{\\mathrm{eff},m} = -\\beta_m \\ln\\!\\left(\\frac{1}{K}\\sum_{k} e^{-\\gamma_k/\\beta_m}\\right)     (2)

with Sionna's calibrated :math:`\\beta_m` for the 38.214 PDSCH tables (``sionna/sys/esm_params/
eesm_beta_table.json``, tables 1 and 2). It equals the SNR on a flat channel, where the thresholds are measured,
and weighs faded subcarriers more for the higher-order, higher-rate MCS (larger :math:`\\beta_m`). The
capacity-equivalent SNR :math:`2^{\\frac{1}{K}\\sum_k \\log_2(1+\\gamma_k)} - 1` (``"capacity"``, the rate measure
of :func:`ckmsim.link.beams.rates_all_beams`) and the mean SNR :math:`\\frac{1}{K}\\sum_k \\gamma_k` (``"mean"``,
what a frequency-averaged gain map predicts) are the alternatives; both ignore that a QAM symbol carries at most
:math:`Q_m` bits, so they overrate channels whose strong subcarriers exceed what the MCS can use (on 4-tap
Rayleigh channels at 14 dB the capacity ESM picked an MCS with 66 % BLER where EESM predicted it to 0.4 dB).

**Selection** (:func:`select_mcs`): the MCS of highest :math:`\\mathrm{SE}_m` whose threshold :math:`\\gamma_m`
(the AWGN SNR at which it reaches the target BLER, 10 %) satisfies
:math:`\\gamma_m \\le \\hat{\\gamma}_{\\mathrm{eff},m} - \\mathrm{margin}` [dB]; MCS 0 when none does (the link
still transmits, at its most robust MCS). A map that predicts one number per UE (a gain map: its SNR after
beamforming) gives the same :math:`\\hat{\\gamma}` for every MCS; one that predicts the frequency response gives
eq. (2). **Goodput** of a UE is :math:`(1 - \\mathrm{BLER})\\, \\mathrm{SE}_m`.

The thresholds are measured with this same link (:func:`calibrate_thresholds`) and shipped in
``mcs_thresholds.json`` next to this module, with the settings and the command that made them (it writes
there unless given ``--out PATH``; about 5 minutes on 2 CPU cores)::

    python -m ckmsim.link.coded

All randomness (information bits, noise) is drawn with numpy from ``SeedSequence([seed, key])`` per UE (key =
UE index), so a UE's result does not depend on which other UEs share its batch, and two maps choosing the same
MCS for a UE see the same noise (common random numbers); only the LDPC chain runs in TensorFlow.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
from scipy.special import logsumexp

import ckmsim  # noqa: F401  (Mitsuba/Dr.Jit before TensorFlow, see ckmsim/__init__.py)
import tensorflow as tf  # noqa: E402
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder  # noqa: E402
from sionna.phy.mapping import Demapper, Mapper  # noqa: E402
from sionna.phy.nr.utils import decode_mcs_index  # noqa: E402

from ckmsim.errors import CkmsimError  # noqa: E402
from ckmsim.validation import is_finite_number, is_whole_number  # noqa: E402

#: Target block error rate of the MCS thresholds (the usual 10 % of NR link adaptation).
TARGET_BLER = 0.1
#: Lowest code rate of the 5G NR LDPC mother code (base graph 2); lower rates repeat its codeword.
MOTHER_CODE_RATE = 1.0 / 5.0
#: Largest information block of one 5G LDPC codeword (base graph 1, 38.212 5.2.2); no code-block segmentation.
MAX_INFO_BITS = 8448
EXECUTION_MODES = ("xla", "graph", "eager")
ESM_METHODS = ("eesm", "capacity", "mean")
DEFAULT_THRESHOLDS_FILE = "mcs_thresholds.json"

# --------------------------------------------------------------------------------------------------- MCS table


@dataclass(frozen=True)
class McsTable:
    """A 5G NR PDSCH MCS table (3GPP TS 38.214 Table 5.1.3.1-``table_index``, no reserved entries).

    Attributes
    ----------
    table_index : int — 1 (64-QAM), 2 (256-QAM), 3 (low-SE 64-QAM) or 4 (1024-QAM)
    modulation_order : [num_mcs], int64 — bits per QAM symbol :math:`Q_m`
    code_rate : [num_mcs], float64 — target code rate :math:`R_m` (the table's :math:`R \\times 1024` / 1024)
    """

    table_index: int
    modulation_order: np.ndarray
    code_rate: np.ndarray

    @classmethod
    def from_3gpp(cls, table_index: int = 1) -> "McsTable":
        """The PDSCH table as Sionna's :func:`sionna.phy.nr.utils.decode_mcs_index` encodes it (read-only arrays)."""
        if table_index not in (1, 2, 3, 4) or isinstance(table_index, bool):
            raise CkmsimError(f"table_index must be 1, 2, 3 or 4 (38.214 Table 5.1.3.1-x). "
                              f"Received: table_index={table_index!r}")
        return _pdsch_table(int(table_index))

    @classmethod
    def _decode(cls, table_index: int) -> "McsTable":
        # Tables 2 and 4 have reserved entries from 28 / 27 on (Sionna marks them with -1)
        order, rate = decode_mcs_index(tf.range(29), table_index=table_index, is_pusch=False,
                                       check_index_validity=False)
        order, rate = order.numpy().astype(np.int64), rate.numpy().astype(np.float64)
        valid = order > 0
        # 38.214 states R x 1024 with at most one decimal (682.5); undo the float32 rounding of Sionna's table
        rate_x1024 = np.round(rate[valid] * 1024 * 2) / 2
        order, rate = order[valid], rate_x1024 / 1024
        # shared by every caller through the cache below: nobody may change it in place
        order.flags.writeable = rate.flags.writeable = False
        return cls(table_index=int(table_index), modulation_order=order, code_rate=rate)

    def __len__(self) -> int:
        return int(self.modulation_order.size)

    @property
    def spectral_efficiency(self) -> np.ndarray:
        """:math:`Q_m R_m` [bit/s/Hz], ``[num_mcs]`` float64 (the table's "spectral efficiency" column, unrounded)."""
        return self.modulation_order * self.code_rate

    def check_index(self, mcs_index, name: str = "mcs_index") -> np.ndarray:
        """``mcs_index`` as an int64 array, or a :class:`CkmsimError` naming ``name`` when out of the table."""
        values = np.asarray(mcs_index)
        if (values.dtype.kind not in "iu" or values.ndim > 1 or values.size == 0 or values.min() < 0
                or values.max() >= len(self)):
            raise CkmsimError(f"{name} must hold integers in [0, {len(self) - 1}] (38.214 Table 5.1.3.1-"
                              f"{self.table_index}). Received: {name}={mcs_index!r}")
        return values.astype(np.int64)


@functools.lru_cache(maxsize=None)
def _pdsch_table(table_index: int) -> McsTable:
    """One decoded table per index and process (decoding runs TensorFlow ops)."""
    return McsTable._decode(table_index)


@dataclass(frozen=True)
class CodedLinkSettings:
    """What the coded link's BLER depends on (and so what a threshold table is valid for).

    Parameters
    ----------
    mcs_table : int
        38.214 Table 5.1.3.1-``mcs_table`` (1: up to 64-QAM).
    num_symbols : int
        QAM symbols (resource elements) per codeword :math:`N`; a codeword has :math:`N Q_m` coded bits.
        256 REs is about 1.6 NR PRBs over a 14-symbol slot: a short codeword, as in a small allocation.
    num_iter : int
        Belief-propagation iterations of the LDPC decoder.
    """

    mcs_table: int = 1
    num_symbols: int = 256
    num_iter: int = 20

    def __post_init__(self):
        if not is_whole_number(self.num_symbols, minimum=1):
            raise CkmsimError(f"CodedLinkSettings.num_symbols must be a positive integer. "
                              f"Received: num_symbols={self.num_symbols!r}")
        if not is_whole_number(self.num_iter, minimum=1):
            raise CkmsimError(f"CodedLinkSettings.num_iter must be a positive integer. "
                              f"Received: num_iter={self.num_iter!r}")
        table = McsTable.from_3gpp(self.mcs_table)
        # [num_mcs]: information bits of one codeword per MCS
        info_bits = np.floor(table.code_rate * table.modulation_order * self.num_symbols)
        if info_bits.max() > MAX_INFO_BITS or info_bits.min() < 12:
            raise CkmsimError(f"CodedLinkSettings.num_symbols gives {int(info_bits.min())}..{int(info_bits.max())} "
                              f"information bits per codeword; one 5G LDPC codeword holds 12..{MAX_INFO_BITS} "
                              f"(no code-block segmentation here). Received: num_symbols={self.num_symbols!r}")

    @property
    def table(self) -> McsTable:
        return McsTable.from_3gpp(self.mcs_table)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CodedLinkSettings":
        """Inverse of :meth:`to_dict`; unknown keys fail with their names."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise CkmsimError(f"Unknown coded-link setting(s) {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**values)


# ----------------------------------------------------------------------------------------------- effective SNR


def _check_channels(h_eff, name: str = "h_eff") -> np.ndarray:
    h = np.asarray(h_eff)
    if h.ndim != 2 or h.shape[0] < 1 or h.shape[1] < 1 or h.dtype.kind not in "fc":
        raise CkmsimError(f"{name} must be a [num_ue, num_subcarriers] real or complex array. "
                          f"Received: {name} with shape {h.shape} and dtype {h.dtype}")
    if not np.all(np.isfinite(h)):
        raise CkmsimError(f"{name} holds NaN/inf at {int(np.count_nonzero(~np.isfinite(h)))} entries. "
                          f"Received: {name} with shape {h.shape}")
    return h.astype(np.complex128)


def _check_snr_scale(snr_scale, num_ue: int) -> np.ndarray:
    scale = np.asarray(snr_scale)
    if (scale.dtype.kind not in "iuf" or scale.shape not in ((), (num_ue,)) or not np.all(np.isfinite(scale))
            or np.any(scale <= 0)):
        raise CkmsimError(f"snr_scale must be a linear SNR > 0, a number or one per UE ([{num_ue}]). "
                          f"Received: snr_scale={snr_scale!r}")
    return np.broadcast_to(scale.astype(np.float64), (num_ue,)).copy()


def _check_snr_db(values, name: str, num_mcs: int, num_ue: int | None = None) -> np.ndarray:
    """SNRs [dB] as ``[num_ue, num_mcs]`` float64 (a ``[num_ue]`` input holds for every MCS); +-inf allowed, NaN not."""
    array = np.asarray(values)
    ok = (array.dtype.kind in "iuf" and array.ndim in (1, 2) and (array.ndim == 1 or array.shape[1] == num_mcs)
          and (num_ue is None or array.shape[0] == num_ue) and not np.isnan(array).any())
    if not ok:
        rows = num_ue if num_ue is not None else "num_ue"
        raise CkmsimError(f"{name} must be a [{rows}] or [{rows}, {num_mcs}] array of dB values without NaN. "
                          f"Received: {name}={values!r}")
    array = array.astype(np.float64)
    return np.repeat(array[:, None], num_mcs, axis=1) if array.ndim == 1 else array


@functools.lru_cache(maxsize=None)
def eesm_beta(mcs_table: int = 1) -> np.ndarray:
    """Sionna's EESM :math:`\\beta_m` (linear) of 38.214 PDSCH table ``mcs_table``: ``[num_mcs]`` float64."""
    path = importlib.resources.files("sionna.sys") / "esm_params" / "eesm_beta_table.json"
    tables = json.loads(path.read_text())["index"]
    if str(mcs_table) not in tables:
        raise CkmsimError(f"Sionna has EESM parameters for PDSCH tables {sorted(tables)} only. "
                          f"Received: mcs_table={mcs_table!r}")
    beta = np.asarray(tables[str(mcs_table)], dtype=np.float64)
    if beta.size != len(McsTable.from_3gpp(mcs_table)):
        raise CkmsimError(f"{path}: {beta.size} EESM parameters for the {len(McsTable.from_3gpp(mcs_table))} "
                          f"MCS of table {mcs_table}")
    return beta


def effective_snr_db(h_eff, snr_scale, method: str = "eesm", mcs_table: int = 1) -> np.ndarray:
    """Effective SNR of each UE's frequency-selective channel for each MCS [dB], eq. (2) of the module docstring.

    Input
    -----
    h_eff : [num_ue, K], complex — beamformed channel per subcarrier (amplitude, linear)
    snr_scale : float or [num_ue], float — :math:`\\rho`, the SNR of a unit-gain channel (linear)
    method : ``"eesm"`` (eq. (2), default), ``"capacity"`` (:math:`2^{\\overline{\\log_2(1+\\gamma_k)}} - 1`)
        or ``"mean"`` (:math:`\\overline{\\gamma_k}`); the last two are the same for every MCS
    mcs_table : int — the 38.214 PDSCH table whose MCS (and EESM :math:`\\beta_m`) are meant

    Output
    ------
    [num_ue, num_mcs], float64 — :math:`10\\log_{10}\\gamma_{\\mathrm{eff},m}` [dB] (-inf for an all-zero channel)
    """
    if method not in ESM_METHODS:
        raise CkmsimError(f"method must be one of {ESM_METHODS}. Received: method={method!r}")
    h = _check_channels(h_eff)
    # [num_ue, K]
    snr = _check_snr_scale(snr_scale, h.shape[0])[:, None] * np.abs(h) ** 2
    num_mcs = len(McsTable.from_3gpp(mcs_table))
    with np.errstate(divide="ignore"):
        if method == "eesm":
            beta = eesm_beta(mcs_table)
            # [num_ue, num_mcs]: log-sum-exp, as exp(-gamma/beta) underflows on strong subcarriers
            log_mean = logsumexp(-snr[:, :, None] / beta, axis=1) - np.log(snr.shape[1])
            # the clip keeps a dead channel at -inf dB when rounding leaves log_mean a hair above 0
            return 10.0 * np.log10(np.maximum(-beta * log_mean, 0.0))
        if method == "mean":
            effective = snr.mean(axis=1)
        else:
            effective = np.expm1(np.log1p(snr).mean(axis=1))
        return np.repeat(10.0 * np.log10(effective)[:, None], num_mcs, axis=1)


def beamformed_channels(h, f) -> np.ndarray:
    """Effective channel :math:`h_k = \\mathbf{f}^\\mathsf{H}\\mathbf{h}_k` of single-antenna UEs (combiner 1).

    The convention of :func:`ckmsim.link.beams.beamforming_gains`: ``|beamformed_channels(h, f)|**2`` is the
    beamforming gain of ``f``.

    Input: h ``[num_ue, K, num_ant]`` complex (e.g. ``BeamSelectionScorer.channels``); f ``[num_ue, num_ant]``
    complex, each UE's unit-norm beam (e.g. ``scorer.codebook[score.beam]``).
    Output: ``[num_ue, K]`` complex128.
    """
    h, f = np.asarray(h), np.asarray(f)
    if h.ndim != 3 or f.shape != (h.shape[0], h.shape[2]):
        raise CkmsimError(f"h must be [num_ue, K, num_ant] and f [num_ue, num_ant]. "
                          f"Received: h with shape {h.shape}, f with shape {f.shape}")
    return np.einsum("ukn,un->uk", h, f.conj())


# -------------------------------------------------------------------------------------------- the coded link


class CodedLink:
    """The Sionna chain of one MCS: bits -> 5G LDPC -> QAM -> eq. (1) -> APP demapper -> BP decoder.

    Parameters
    ----------
    mcs_index : int — row of ``settings.table``
    settings : CodedLinkSettings
    mode : ``"xla"`` (``tf.function(jit_compile=True)``), ``"graph"`` (``tf.function``) or ``"eager"``
    precision : ``"single"`` | ``"double"`` — of every Sionna block

    Attributes ``k`` (information bits), ``n`` (coded bits after rate matching), ``num_symbols``,
    ``modulation_order``, ``spectral_efficiency`` describe one codeword.

    Input of :meth:`block_errors`
    -----------------------------
    bits : [B, k], float — information bits (0/1)
    gain : [B, num_symbols], complex — :math:`\\sqrt{\\rho}\\,h` on each symbol's subcarrier
    noise : [B, num_symbols], complex — :math:`\\mathcal{CN}(0, 1)` samples

    Output: [B], bool — codeword error (any information bit wrong)

    The first call for a batch size traces (and under XLA compiles, a few seconds on a CPU); keep ``B`` fixed.
    """

    def __init__(self, mcs_index: int, settings: CodedLinkSettings = CodedLinkSettings(), mode: str = "xla",
                 precision: str = "single"):
        if mode not in EXECUTION_MODES:
            raise CkmsimError(f"mode must be one of {EXECUTION_MODES}. Received: mode={mode!r}")
        if precision not in ("single", "double"):
            raise CkmsimError(f"precision must be 'single' or 'double'. Received: precision={precision!r}")
        table = settings.table
        mcs = int(table.check_index(mcs_index))
        self.mcs_index, self.settings, self.mode, self.precision = mcs, settings, mode, precision
        self.modulation_order = int(table.modulation_order[mcs])
        self.code_rate = float(table.code_rate[mcs])
        self.spectral_efficiency = float(table.spectral_efficiency[mcs])
        self.num_symbols = int(settings.num_symbols)
        self.n = self.num_symbols * self.modulation_order
        # rounding down keeps k/n <= R <= 948/1024, the 38.212 limit the encoder checks
        self.k = int(np.floor(self.code_rate * self.n))
        # below rate 1/5 the 5G mother codeword (length 5k) is repeated cyclically up to n (circular buffer)
        self.n_ldpc = min(self.n, int(round(self.k / MOTHER_CODE_RATE)))
        self.num_repeats = -(-self.n // self.n_ldpc)
        interleave = self.modulation_order if self.n_ldpc == self.n else None
        self._encoder = LDPC5GEncoder(self.k, self.n_ldpc, num_bits_per_symbol=interleave, precision=precision)
        self._decoder = LDPC5GDecoder(self._encoder, hard_out=True, return_infobits=True,
                                      num_iter=int(settings.num_iter), precision=precision)
        self._mapper = Mapper("qam", self.modulation_order, precision=precision)
        self._demapper = Demapper("app", "qam", self.modulation_order, precision=precision)
        self.rdtype = tf.float32 if precision == "single" else tf.float64
        self.cdtype = tf.complex64 if precision == "single" else tf.complex128
        self._called = False
        if mode == "xla":
            self._run = tf.function(self._block_errors, jit_compile=True)
        elif mode == "graph":
            self._run = tf.function(self._block_errors)
        else:
            self._run = self._block_errors

    def block_errors(self, bits, gain, noise) -> np.ndarray:
        """Codeword errors of a batch (see the class docstring for shapes): ``[B]`` bool."""
        args = (tf.convert_to_tensor(bits, self.rdtype), tf.convert_to_tensor(gain, self.cdtype),
                tf.convert_to_tensor(noise, self.cdtype))
        if self._called:
            return self._run(*args).numpy()
        # TensorFlow's frequent-retracing detector keys on the code object all CodedLink instances share, so the
        # first trace of every further MCS would warn of "retracing"; a real retrace (a new B) still warns
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")
        try:
            errors = self._run(*args).numpy()
        finally:
            logger.setLevel(level)
        self._called = True
        return errors

    def _block_errors(self, bits, gain, noise):
        # [B, n_ldpc]
        codeword = self._encoder(bits)
        if self.num_repeats > 1:
            # [B, n]
            codeword = tf.tile(codeword, [1, self.num_repeats])[:, :self.n]
        # [B, num_symbols]
        y = gain * self._mapper(codeword) + noise
        # Per-symbol equalisation loses nothing on a scalar channel; the floor keeps a null subcarrier at LLR 0
        power = tf.maximum(tf.abs(gain) ** 2, tf.cast(1e-30, self.rdtype))
        y_eq = y * tf.math.conj(gain) / tf.cast(power, self.cdtype)
        # [B, n]
        llr = self._demapper(y_eq, 1.0 / power)
        if self.num_repeats > 1:
            # [B, num_repeats, n_ldpc]: repeated bits add their LLRs (maximum-ratio combining)
            llr = tf.pad(llr, [[0, 0], [0, self.num_repeats * self.n_ldpc - self.n]])
            llr = tf.reduce_sum(tf.reshape(llr, [-1, self.num_repeats, self.n_ldpc]), axis=1)
        # [B, k]
        bits_hat = self._decoder(llr)
        return tf.reduce_any(tf.not_equal(bits, bits_hat), axis=-1)


@functools.lru_cache(maxsize=None)
def _cached_link(mcs_index: int, settings: CodedLinkSettings, mode: str, precision: str) -> CodedLink:
    """One :class:`CodedLink` per configuration and process, so each MCS is traced / XLA-compiled once."""
    return CodedLink(mcs_index, settings, mode=mode, precision=precision)


def _draws(seed: int, key: int, mcs_index: int, num_codewords: int, link: CodedLink) -> tuple[np.ndarray, np.ndarray]:
    """Information bits ``[C, k]`` and unit noise ``[C, N]`` of one UE (``key``): independent of its batch mates.

    The noise stream depends on (seed, key) only, so every MCS tried on a UE sees the same noise.
    """
    noise_rng = np.random.default_rng([seed, key])
    # [C, N]
    noise = (noise_rng.standard_normal((num_codewords, link.num_symbols))
             + 1j * noise_rng.standard_normal((num_codewords, link.num_symbols))) / np.sqrt(2.0)
    bits = np.random.default_rng([seed, key, 1 + mcs_index]).integers(0, 2, (num_codewords, link.k))
    return bits, noise


def _simulate_rows(link: CodedLink, gain: np.ndarray, keys: np.ndarray, num_codewords: int, seed: int,
                   batch_size: int) -> np.ndarray:
    """Codeword errors per row: gain ``[R, K]`` complex (:math:`\\sqrt{\\rho}h`), keys ``[R]`` -> ``[R]`` int64.

    Rows are streamed in fixed batches of ``batch_size`` codewords (the last one padded), so the compiled
    function sees one shape whatever the number of rows.
    """
    num_rows, num_sc = gain.shape
    # [C, N]: subcarrier of symbol j of codeword c, eq. (1)
    subcarrier = (np.arange(num_codewords)[:, None] * link.num_symbols + np.arange(link.num_symbols)) % num_sc
    errors = np.zeros(num_rows, dtype=np.int64)
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    pending_count = 0

    def flush(final: bool):
        nonlocal pending, pending_count
        while pending_count >= batch_size or (final and pending_count > 0):
            bits, gains, noise, rows = (np.concatenate(parts) for parts in zip(*pending))
            take = min(batch_size, pending_count)
            pad = batch_size - take
            # [batch_size, ...]: padding codewords (zero bits, unit channel, no noise) are dropped afterwards
            failed = link.block_errors(np.concatenate([bits[:take], np.zeros((pad, link.k))]),
                                       np.concatenate([gains[:take], np.ones((pad, link.num_symbols))]),
                                       np.concatenate([noise[:take], np.zeros((pad, link.num_symbols))]))[:take]
            np.add.at(errors, rows[:take], failed.astype(np.int64))
            pending_count -= take
            pending = [(bits[take:], gains[take:], noise[take:], rows[take:])] if pending_count else []

    for row in range(num_rows):
        bits, noise = _draws(seed, int(keys[row]), link.mcs_index, num_codewords, link)
        pending.append((bits, gain[row][subcarrier], noise, np.full(num_codewords, row)))
        pending_count += num_codewords
        flush(final=False)
    flush(final=True)
    return errors


@dataclass(frozen=True)
class CodedLinkScore:
    """Per-UE outcome of the coded link.

    Attributes
    ----------
    mcs : [num_ue], int64 — MCS used (row of the 38.214 table)
    bler : [num_ue], float64 — codeword error rate measured on the true channel
    goodput_bps_hz : [num_ue], float64 — :math:`(1 - \\mathrm{BLER})\\,\\mathrm{SE}_m` [bit/s/Hz]
    spectral_efficiency_bps_hz : [num_ue], float64 — :math:`\\mathrm{SE}_m = Q_m R_m` of the MCS used
    num_codewords : int — codewords simulated per UE (BLER resolution 1 / num_codewords)
    """

    mcs: np.ndarray
    bler: np.ndarray
    goodput_bps_hz: np.ndarray
    spectral_efficiency_bps_hz: np.ndarray
    num_codewords: int


def _check_run_args(num_codewords, seed, batch_size):
    if not is_whole_number(num_codewords, minimum=1):
        raise CkmsimError(f"num_codewords must be a positive integer. Received: num_codewords={num_codewords!r}")
    if not is_whole_number(seed, minimum=0):
        raise CkmsimError(f"seed must be an integer >= 0. Received: seed={seed!r}")
    if not is_whole_number(batch_size, minimum=1):
        raise CkmsimError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")


def simulate_coded_link(h_eff, snr_scale, mcs_index, *, settings: CodedLinkSettings = CodedLinkSettings(),
                        num_codewords: int = 128, seed: int = 0, batch_size: int = 256, mode: str = "xla",
                        precision: str = "single", keys=None) -> CodedLinkScore:
    """BLER and goodput of each UE at the given MCS over its true effective channel, eq. (1).

    Input
    -----
    h_eff : [num_ue, K], complex — beamformed channel per subcarrier (linear amplitude)
    snr_scale : float or [num_ue], float — :math:`\\rho`, the linear SNR of a unit-gain channel
        (:attr:`ckmsim.link.budget.LinkBudget.snr_scale`)
    mcs_index : int or [num_ue], int — MCS of each UE
    settings : CodedLinkSettings — MCS table, codeword length, decoder iterations
    num_codewords : int — codewords per UE
    seed : int >= 0 — with ``keys`` (default: the UE index), fixes every bit and noise sample
    batch_size : int — codewords per compiled call (UE x codeword pairs, padded to this size)
    mode : ``"xla"`` | ``"graph"`` | ``"eager"``; precision : ``"single"`` | ``"double"``

    Output
    ------
    CodedLinkScore — per-UE ``[num_ue]`` arrays
    """
    h = _check_channels(h_eff)
    num_ue = h.shape[0]
    scale = _check_snr_scale(snr_scale, num_ue)
    table = settings.table
    mcs = table.check_index(mcs_index)
    mcs = np.full(num_ue, mcs) if mcs.ndim == 0 else mcs
    if mcs.shape != (num_ue,):
        raise CkmsimError(f"mcs_index must be one integer or one per UE ([{num_ue}]). "
                          f"Received: mcs_index={mcs_index!r}")
    _check_run_args(num_codewords, seed, batch_size)
    keys = np.arange(num_ue) if keys is None else np.asarray(keys)
    if keys.shape != (num_ue,) or keys.dtype.kind not in "iu" or (keys < 0).any():
        raise CkmsimError(f"keys must be [{num_ue}] integers >= 0. Received: keys={keys!r}")
    # [num_ue, K]: eq. (1) with the noise normalised to unit variance
    gain = np.sqrt(scale)[:, None] * h
    errors = np.zeros(num_ue, dtype=np.int64)
    for m in np.unique(mcs):
        link = _cached_link(int(m), settings, mode, precision)
        rows = np.nonzero(mcs == m)[0]
        errors[rows] = _simulate_rows(link, gain[rows], keys[rows], int(num_codewords), int(seed), int(batch_size))
    bler = errors / float(num_codewords)
    efficiency = table.spectral_efficiency[mcs]
    return CodedLinkScore(mcs=mcs, bler=bler, goodput_bps_hz=(1 - bler) * efficiency,
                          spectral_efficiency_bps_hz=efficiency, num_codewords=int(num_codewords))


# ---------------------------------------------------------------------------------------- thresholds, selection


@dataclass(frozen=True)
class McsThresholds:
    """AWGN SNR at which each MCS of a table reaches ``target_bler`` with the coded link of ``settings``.

    Attributes
    ----------
    settings : CodedLinkSettings
    target_bler : float
    snr_db : [num_mcs], float64 — thresholds :math:`\\gamma_m` [dB]
    curves : per MCS ``{"snr_grid_db": [...], "bler": [...]}``, the measured points the threshold was read from
    provenance : dict — command, Monte-Carlo settings, versions, date
    """

    settings: CodedLinkSettings
    target_bler: float
    snr_db: np.ndarray
    curves: tuple = ()
    provenance: dict = field(default_factory=dict)

    def to_json(self, path) -> None:
        table = self.settings.table
        rows = [{"mcs": m, "modulation_order": int(table.modulation_order[m]), "code_rate_x1024":
                 float(table.code_rate[m] * 1024), "spectral_efficiency": float(table.spectral_efficiency[m]),
                 "snr_db": round(float(self.snr_db[m]), 3), **(self.curves[m] if self.curves else {})}
                for m in range(len(table))]
        head = json.dumps({"settings": self.settings.to_dict(), "target_bler": self.target_bler,
                           "provenance": self.provenance}, indent=1)
        # one line per MCS keeps the file short and its diffs readable; head[:-2] drops the closing "\n}"
        body = ",\n  ".join(json.dumps(row) for row in rows)
        with open(path, "w") as file:
            file.write(f'{head[:-2]},\n "mcs": [\n  {body}\n ]\n}}\n')

    @classmethod
    def from_json(cls, path) -> "McsThresholds":
        with open(path) as file:
            data = json.load(file)
        missing = [k for k in ("settings", "target_bler", "mcs") if k not in data]
        if missing:
            raise CkmsimError(f"{path}: missing field(s) {missing} of an MCS threshold table")
        settings = CodedLinkSettings.from_dict(data["settings"])
        rows = data["mcs"]
        if [r.get("mcs") for r in rows] != list(range(len(settings.table))):
            raise CkmsimError(f"{path}: field 'mcs' must list MCS 0..{len(settings.table) - 1} of table "
                              f"{settings.mcs_table} in order")
        return cls(settings=settings, target_bler=float(data["target_bler"]),
                   snr_db=np.array([r["snr_db"] for r in rows], dtype=np.float64),
                   curves=tuple({"snr_grid_db": r.get("snr_grid_db", []), "bler": r.get("bler", [])} for r in rows),
                   provenance=data.get("provenance", {}))


def load_thresholds(path=None) -> McsThresholds:
    """The calibrated table shipped with ckmsim (``ckmsim/link/mcs_thresholds.json``), or the one at ``path``."""
    if path is None:
        path = importlib.resources.files("ckmsim.link") / DEFAULT_THRESHOLDS_FILE
    return McsThresholds.from_json(path)


def select_mcs(snr_db, thresholds: McsThresholds, margin_db: float = 0.0) -> np.ndarray:
    """MCS of highest spectral efficiency with :math:`\\gamma_m \\le \\hat{\\gamma}_{\\mathrm{eff},m} - m_\\mathrm{dB}`.

    Input: snr_db ``[num_ue]`` (one effective SNR for every MCS) or ``[num_ue, num_mcs]`` (per MCS, eq. (2))
    float [dB]; margin_db >= 0 [dB].
    Output: ``[num_ue]`` int64; MCS 0 where no MCS qualifies. Highest SE rather than highest index because
    38.214 Table 1 is not monotone there (MCS 17, 64-QAM, has a lower SE than MCS 16, 16-QAM).
    """
    efficiency = thresholds.settings.table.spectral_efficiency
    snr = _check_snr_db(snr_db, "snr_db", efficiency.size)
    if not (is_finite_number(margin_db) and margin_db >= 0):
        raise CkmsimError(f"margin_db must be a number >= 0. Received: margin_db={margin_db!r}")
    # [num_ue, num_mcs]
    feasible = thresholds.snr_db[None, :] <= snr - margin_db
    choice = np.argmax(np.where(feasible, efficiency[None, :], -np.inf), axis=1)
    return np.where(feasible.any(axis=1), choice, 0).astype(np.int64)


def _crossing_db(snr_db: np.ndarray, bler: np.ndarray, target: float, num_codewords: int) -> float | None:
    """First SNR where the measured BLER falls to ``target``, linear in log10(BLER) between grid points."""
    # zero errors counted as half an error, so that the log stays finite
    log_bler = np.log10(np.maximum(bler, 0.5 / num_codewords))
    below = np.nonzero(bler <= target)[0]
    if below.size == 0 or below[0] == 0:
        return None
    i = below[0]
    t = (log_bler[i - 1] - np.log10(target)) / (log_bler[i - 1] - log_bler[i])
    return float(snr_db[i - 1] + t * (snr_db[i] - snr_db[i - 1]))


def calibrate_thresholds(settings: CodedLinkSettings = CodedLinkSettings(), *, target_bler: float = TARGET_BLER,
                         mcs_indices=None, num_codewords: int = 1024, snr_step_db: float = 0.25,
                         window: int = 8, start_gap_db: float = 1.0, seed: int = 0, batch_size: int = 256,
                         mode: str = "xla", command: str = "ckmsim.link.coded.calibrate_thresholds()",
                         log=None) -> McsThresholds:
    """Measures each MCS's ``target_bler`` SNR on AWGN (flat :math:`h = 1`) with :func:`simulate_coded_link`.

    For MCS ``m`` the grid starts ``start_gap_db`` above the Shannon SNR :math:`2^{\\mathrm{SE}_m} - 1`, on a
    multiple of ``snr_step_db`` (codewords of a few hundred symbols need 2-3 dB more than Shannon at 10 %
    BLER), and is simulated ``window`` points at a time, upward until the BLER falls to the target (downward
    if it already has at the first point);
    the threshold is interpolated linearly in log10(BLER). All grid points share the same bits and noise
    (common random numbers), which keeps the measured curve monotone.

    Output: McsThresholds, with NaN for MCS not in ``mcs_indices`` (all by default).
    """
    table = settings.table
    mcs_list = range(len(table)) if mcs_indices is None else table.check_index(mcs_indices, "mcs_indices").ravel()
    if not (is_finite_number(target_bler) and 0 < target_bler < 1):
        raise CkmsimError(f"target_bler must be in (0, 1). Received: target_bler={target_bler!r}")
    if not (is_finite_number(snr_step_db) and snr_step_db > 0):
        raise CkmsimError(f"snr_step_db must be > 0. Received: snr_step_db={snr_step_db!r}")
    if not is_finite_number(start_gap_db):
        raise CkmsimError(f"start_gap_db must be a number. Received: start_gap_db={start_gap_db!r}")
    if not is_whole_number(window, minimum=2):
        raise CkmsimError(f"window must be an integer >= 2. Received: window={window!r}")
    thresholds = np.full(len(table), np.nan)
    curves = [{"snr_grid_db": [], "bler": []} for _ in range(len(table))]
    for m in mcs_list:
        start = time.perf_counter()
        shannon_db = 10 * np.log10(2 ** table.spectral_efficiency[m] - 1)
        low = np.floor((shannon_db + start_gap_db) / snr_step_db) * snr_step_db
        grid_db, bler = np.empty(0), np.empty(0)
        for _ in range(12):
            lo = low if grid_db.size == 0 else (grid_db[-1] + snr_step_db if bler[-1] > target_bler
                                                else grid_db[0] - window * snr_step_db)
            new_db = lo + snr_step_db * np.arange(window)
            score = simulate_coded_link(np.ones((window, 1)), 10 ** (new_db / 10), m, settings=settings,
                                        num_codewords=num_codewords, seed=seed, batch_size=batch_size, mode=mode,
                                        keys=np.zeros(window, dtype=np.int64))
            order = np.argsort(np.concatenate([grid_db, new_db]))
            grid_db, bler = np.concatenate([grid_db, new_db])[order], np.concatenate([bler, score.bler])[order]
            crossing = _crossing_db(grid_db, bler, target_bler, num_codewords)
            if crossing is not None:
                thresholds[m] = crossing
                break
        else:
            raise CkmsimError(f"MCS {m}: no {target_bler} BLER crossing within {grid_db[0]:.2f}..{grid_db[-1]:.2f} dB")
        curves[m] = {"snr_grid_db": [round(float(s), 3) for s in grid_db], "bler": [float(b) for b in bler]}
        if log is not None:
            log(f"MCS {m:2d} (Qm {table.modulation_order[m]}, R {table.code_rate[m]:.4f}): "
                f"{thresholds[m]:6.2f} dB  ({grid_db.size} points, {time.perf_counter() - start:.1f} s)")
    provenance = {"command": command, "num_codewords": int(num_codewords),
                  "snr_step_db": float(snr_step_db), "window": int(window), "start_gap_db": float(start_gap_db),
                  "seed": int(seed), "mode": mode,
                  "channel": "AWGN (h = 1 on every symbol)", "decoder": "LDPC5GDecoder boxplus-phi flooding, "
                  "hard out", "demapper": "app", "error_detection": "genie (information bits compared)",
                  "sionna": _version("sionna"), "tensorflow": tf.__version__, "machine": platform.machine(),
                  "date": time.strftime("%Y-%m-%d")}
    return McsThresholds(settings=settings, target_bler=float(target_bler), snr_db=thresholds,
                         curves=tuple(curves), provenance=provenance)


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


# ------------------------------------------------------------------------------------------------------ scorer


class CodedLinkScorer:
    """Scores predicted effective SNRs by the goodput of the MCS they select on the true coded link.

    The map's prediction chooses the MCS (:func:`select_mcs`); :func:`simulate_coded_link` on the true
    channel decides its BLER. :meth:`genie` is the reference where the true effective SNR per MCS
    (:attr:`true_snr_db`, eq. (2) by default) chooses, through the same thresholds and margin. A map that predicts
    one SNR per UE cannot see the channel's frequency selectivity; the genie can, and the gap is part of the
    map's score.

    Parameters
    ----------
    h_eff : [num_ue, K], complex — true beamformed channels (e.g. :func:`beamformed_channels` of the true
        channels and the beams in use)
    snr_scale : float or [num_ue], float — :math:`\\rho`, linear (``LinkBudget.snr_scale``)
    thresholds : McsThresholds — default: the calibrated table shipped with ckmsim (:func:`load_thresholds`);
        its settings define the link
    margin_db : float >= 0 — back-off from the predicted SNR [dB]
    num_codewords, seed, batch_size, mode, precision : as in :func:`simulate_coded_link`
    esm : ``"eesm"`` | ``"capacity"`` | ``"mean"`` — effective-SNR definition of the genie (:func:`effective_snr_db`)

    Each (UE, MCS) pair is simulated once, with the same bits and noise whichever map chose it, and kept:
    scoring many maps costs only the pairs not seen yet.
    """

    def __init__(self, h_eff, snr_scale, thresholds: McsThresholds | None = None, margin_db: float = 0.0, *,
                 num_codewords: int = 128, seed: int = 0, batch_size: int = 256, mode: str = "xla",
                 precision: str = "single", esm: str = "eesm"):
        self.h_eff = _check_channels(h_eff)
        self.snr_scale = _check_snr_scale(snr_scale, self.h_eff.shape[0])
        if not (is_finite_number(margin_db) and margin_db >= 0):
            raise CkmsimError(f"margin_db must be a number >= 0. Received: margin_db={margin_db!r}")
        if mode not in EXECUTION_MODES:
            raise CkmsimError(f"mode must be one of {EXECUTION_MODES}. Received: mode={mode!r}")
        _check_run_args(num_codewords, seed, batch_size)
        self.thresholds = load_thresholds() if thresholds is None else thresholds
        self.margin_db = float(margin_db)
        #: [num_ue, num_mcs] float64: true effective SNR of each UE for each MCS [dB]
        self.true_snr_db = effective_snr_db(self.h_eff, self.snr_scale, esm, self.thresholds.settings.mcs_table)
        self._run = dict(settings=self.thresholds.settings, num_codewords=int(num_codewords), seed=int(seed),
                         batch_size=int(batch_size), mode=mode, precision=precision)
        # [num_ue, num_mcs]: BLER of every pair simulated so far (NaN: not yet)
        self._bler = np.full((self.num_ue, len(self.thresholds.settings.table)), np.nan)

    @property
    def num_ue(self) -> int:
        return int(self.h_eff.shape[0])

    def score(self, predicted_snr_db) -> CodedLinkScore:
        """Per-UE outcome when the map's effective SNR picks the MCS.

        Input: predicted_snr_db ``[num_ue]`` (one SNR per UE, as a gain map predicts) or ``[num_ue, num_mcs]``
        (per MCS, eq. (2) of a predicted frequency response) float [dB].
        """
        predicted = _check_snr_db(predicted_snr_db, "predicted_snr_db", self._bler.shape[1], self.num_ue)
        mcs = select_mcs(predicted, self.thresholds, self.margin_db)
        ue = np.arange(self.num_ue)
        todo = np.isnan(self._bler[ue, mcs])
        if todo.any():
            rows = ue[todo]
            fresh = simulate_coded_link(self.h_eff[rows], self.snr_scale[rows], mcs[rows], keys=rows, **self._run)
            self._bler[rows, mcs[rows]] = fresh.bler
        bler = self._bler[ue, mcs]
        efficiency = self.thresholds.settings.table.spectral_efficiency[mcs]
        return CodedLinkScore(mcs=mcs, bler=bler, goodput_bps_hz=(1 - bler) * efficiency,
                              spectral_efficiency_bps_hz=efficiency, num_codewords=self._run["num_codewords"])

    def genie(self) -> CodedLinkScore:
        """Reference: the MCS chosen from the true effective SNR (same thresholds and margin)."""
        return self.score(self.true_snr_db)


# ------------------------------------------------------------------------------------------ calibration script


def _command(argv) -> str:
    """The calibration command as run, without ``--out`` (where it is written does not change the table)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--out" in args:
        del args[args.index("--out"):args.index("--out") + 2]
    args = [a for a in args if not a.startswith("--out=")]
    return " ".join(["python -m ckmsim.link.coded", *args])


def main(argv=None) -> None:
    """``python -m ckmsim.link.coded``: calibrates the thresholds and writes them as JSON."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", default=str(importlib.resources.files("ckmsim.link") / DEFAULT_THRESHOLDS_FILE))
    parser.add_argument("--mcs-table", type=int, default=1)
    parser.add_argument("--num-symbols", type=int, default=256)
    parser.add_argument("--num-iter", type=int, default=20)
    parser.add_argument("--num-codewords", type=int, default=1024)
    parser.add_argument("--snr-step-db", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = CodedLinkSettings(mcs_table=args.mcs_table, num_symbols=args.num_symbols, num_iter=args.num_iter)
    result = calibrate_thresholds(settings, num_codewords=args.num_codewords, snr_step_db=args.snr_step_db,
                                  seed=args.seed, command=_command(argv),
                                  log=lambda line: print(line, flush=True))
    result.to_json(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

r"""LAD-CKM's tensors: CSI images, the partial downlink pilot pattern, normalisation, examples from a dynamic store.

- **Subcarriers.** The paper's OFDM grid has 64 subcarriers of 312.5 kHz of which 52 carry the measurement;
  as in 802.11's 20 MHz grid those are offsets :math:`k = -26..-1, 1..26` (no DC, no guard bands):
  :func:`used_subcarriers` picks them from the stored grid (:meth:`~ckmsim.raytrace.csi.CsiSettings.subcarrier_offsets_hz`).
- **Images** (:func:`to_image` / :func:`from_image`): complex CSI ``[U, N_c, N_r, N_t]`` <-> real
  ``[U, N_r, N_t, 2 N_c]``, the real parts then the imaginary parts along the channel axis (footnote 1).
  The uplink CSI of a store is ``[U, N_c, N_t, N_r]`` (the UE transmits); it is transposed to the downlink's
  antenna layout first, so that a pixel is the same antenna pair in both.
- **Pilots** (:func:`pilot_mask`): the downlink pilots of :math:`\rho = 0.125` sit on every 4th subcarrier
  and every 2nd BS antenna (all UE antennas): ``[N_r, N_t, N_c]`` bool, its mean is :math:`\rho`. The partial
  downlink input is the true downlink CSI there and zero elsewhere; :math:`\rho = 0` leaves it all zero.
- **Normalisation.** Each UE's CSI is divided by the RMS of its uplink CSI (what the BS measures, so it is
  known at inference): gains spanning 60 dB between UEs become images of order one. The NMSE of eq. (12) is
  the same before and after.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_positive_int, is_whole_number

#: Subcarriers that carry the measurement in the paper (of 64).
PAPER_USED_SUBCARRIERS = 52


def used_subcarriers(num_subcarriers: int, num_used: int = PAPER_USED_SUBCARRIERS) -> np.ndarray:
    """Indices (into a grid of ``num_subcarriers`` with offsets ``-K/2 .. K/2-1``) of the ``num_used``
    subcarriers nearest the carrier, DC excluded: ``num_used / 2`` on each side."""
    for name, value in (("num_subcarriers", num_subcarriers), ("num_used", num_used)):
        if not is_whole_number(value, minimum=2):
            raise CkmsimError(f"{name} must be an integer >= 2. Received: {name}={value!r}")
    if num_used % 2 or num_used > num_subcarriers - 1:
        raise CkmsimError(f"num_used must be even and below num_subcarriers={num_subcarriers} (DC is not used). "
                          f"Received: num_used={num_used}")
    offsets = np.arange(num_subcarriers) - num_subcarriers // 2
    half = num_used // 2
    return np.flatnonzero((offsets != 0) & (offsets >= -half) & (offsets <= half))


def to_image(h: np.ndarray) -> np.ndarray:
    """Complex ``[U, N_c, N_r, N_t]`` -> real ``[U, N_r, N_t, 2 N_c]`` float32 (real parts, then imaginary)."""
    h = np.asarray(h)
    if h.ndim != 4 or not np.iscomplexobj(h):
        raise CkmsimError(f"CSI must be complex [num_ue, num_subcarriers, N_r, N_t]. Received: shape={h.shape}, "
                          f"dtype={h.dtype}")
    moved = np.moveaxis(h, 1, -1)
    return np.concatenate([moved.real, moved.imag], axis=-1).astype(np.float32)


def from_image(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_image`: real ``[U, N_r, N_t, 2 N_c]`` -> complex64 ``[U, N_c, N_r, N_t]``."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] % 2:
        raise CkmsimError(f"CSI images must be [num_ue, N_r, N_t, 2 N_c]. Received: shape={x.shape}")
    half = x.shape[-1] // 2
    return np.moveaxis(x[..., :half] + 1j * x[..., half:], -1, 1).astype(np.complex64)


def pilot_mask(num_subcarriers: int, num_bs_antennas: int, num_ue_antennas: int, subcarrier_step: int = 4,
               antenna_step: int = 2) -> np.ndarray:
    """``[N_r, N_t, N_c]`` bool: pilots on subcarriers ``0, s, 2s, ...`` and BS antennas ``0, a, 2a, ...``
    (every UE antenna). ``subcarrier_step = 0`` gives no pilot at all (:math:`\\rho = 0`)."""
    for name, value in (("num_subcarriers", num_subcarriers), ("num_bs_antennas", num_bs_antennas),
                        ("num_ue_antennas", num_ue_antennas), ("antenna_step", antenna_step)):
        check_positive_int(value, name)
    if not is_whole_number(subcarrier_step, minimum=0):
        raise CkmsimError(f"subcarrier_step must be an integer >= 0 (0: no pilot). Received: {subcarrier_step!r}")
    mask = np.zeros((num_ue_antennas, num_bs_antennas, num_subcarriers), dtype=bool)
    if subcarrier_step:
        mask[:, ::antenna_step, ::subcarrier_step] = True
    return mask


@dataclass(frozen=True)
class LadCkmEncoding:
    """How a UE's uplink and partial downlink CSI become the network's inputs, and its output CSI again.

    Parameters
    ----------
    num_used : int
        Measured subcarriers (the paper: 52 of 64), :func:`used_subcarriers`.
    subcarrier_step, antenna_step : int
        The downlink pilot pattern (:func:`pilot_mask`); ``subcarrier_step = 0``: no pilot (:math:`\\rho = 0`).
    """

    num_used: int = PAPER_USED_SUBCARRIERS
    subcarrier_step: int = 4
    antenna_step: int = 2

    def __post_init__(self):
        if not is_whole_number(self.num_used, minimum=2) or self.num_used % 2:
            raise CkmsimError(f"num_used must be an even integer >= 2. Received: num_used={self.num_used!r}")
        pilot_mask(2, 2, 1, self.subcarrier_step, self.antenna_step)

    def pilot_overhead(self, num_bs_antennas: int, num_ue_antennas: int = 1) -> float:
        """:math:`\\rho`: the share of the measured resource grid (subcarriers x BS antennas) holding pilots."""
        return float(pilot_mask(self.num_used, num_bs_antennas, num_ue_antennas, self.subcarrier_step,
                                self.antenna_step).mean())

    def subcarriers(self, num_subcarriers: int) -> np.ndarray:
        return used_subcarriers(num_subcarriers, self.num_used)

    def encode(self, h_ul: np.ndarray, h_dl: np.ndarray | None = None) -> tuple[dict, np.ndarray]:
        """The network inputs of ``U`` UEs and each one's scale.

        Input
        -----
        h_ul : ``[U, K, N_t, N_r]`` complex, the uplink CSI on the full stored grid of ``K`` subcarriers
        h_dl : ``[U, K, N_r, N_t]`` complex or None, the true downlink CSI (its pilots feed the partial input;
            None only with ``subcarrier_step = 0``)

        Output
        ------
        inputs : dict ``uplink`` and ``partial_downlink``, ``[U, N_r, N_t, 2 N_used]`` float32
        scale : ``[U]`` float64, the RMS of each UE's uplink CSI (1 where it is zero)
        """
        h_ul = np.asarray(h_ul)
        if h_ul.ndim != 4 or not np.iscomplexobj(h_ul):
            raise CkmsimError(f"h_ul must be complex [num_ue, num_subcarriers, N_t, N_r]. Received: shape={h_ul.shape}")
        used = self.subcarriers(h_ul.shape[1])
        uplink = np.swapaxes(h_ul[:, used], -1, -2)
        rms = np.sqrt(np.mean(np.abs(uplink) ** 2, axis=(1, 2, 3)))
        scale = np.where(rms > 0, rms, 1.0)
        num_ue, _, num_ue_ant, num_bs_ant = uplink.shape
        partial = np.zeros((num_ue, num_ue_ant, num_bs_ant, 2 * len(used)), np.float32)
        if self.subcarrier_step:
            if h_dl is None:
                raise CkmsimError("The partial downlink input needs the downlink CSI on its pilots. Received: h_dl=None")
            target = self.target(h_dl, scale)
            mask = pilot_mask(len(used), num_bs_ant, num_ue_ant, self.subcarrier_step, self.antenna_step)
            partial = np.where(np.concatenate([mask, mask], axis=-1)[None], target, 0.0).astype(np.float32)
        return {"uplink": to_image(uplink / scale[:, None, None, None]), "partial_downlink": partial}, scale

    def target(self, h_dl: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The downlink CSI ``[U, K, N_r, N_t]`` on the used subcarriers as images over ``scale`` ``[U]``."""
        h_dl = np.asarray(h_dl)
        used = self.subcarriers(h_dl.shape[1])
        return to_image(h_dl[:, used] / np.asarray(scale)[:, None, None, None])

    def decode(self, images: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Network output ``[U, N_r, N_t, 2 N_used]`` -> downlink CSI ``[U, N_used, N_r, N_t]`` complex64 in the
        CSI's own units."""
        return (from_image(images) * np.asarray(scale)[:, None, None, None]).astype(np.complex64)

    def to_dict(self) -> dict:
        return asdict(self)

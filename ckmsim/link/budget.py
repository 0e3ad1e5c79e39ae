"""Link budget: turns channel gains into SNR."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ckmsim.errors import CkmsimError

THERMAL_NOISE_DBM_PER_HZ = -174.0


@dataclass(frozen=True)
class LinkBudget:
    """Downlink budget of one BS serving one UE at a time.

    Parameters
    ----------
    tx_power_dbm : float
        Total BS transmit power [dBm], spread evenly over the subcarriers.
    bandwidth_hz : float
        Occupied bandwidth [Hz].
    num_subcarriers : int
        Subcarriers on which the channel is evaluated, evenly spaced over the bandwidth.
    noise_figure_db : float
        UE receiver noise figure [dB].
    """

    tx_power_dbm: float = 30.0
    bandwidth_hz: float = 100e6
    num_subcarriers: int = 64
    noise_figure_db: float = 7.0

    def __post_init__(self):
        if not self.bandwidth_hz > 0:
            raise CkmsimError(f"LinkBudget.bandwidth_hz must be > 0. Received: {self.bandwidth_hz}")
        if int(self.num_subcarriers) != self.num_subcarriers or self.num_subcarriers < 1:
            raise CkmsimError(f"LinkBudget.num_subcarriers must be a positive integer. Received: {self.num_subcarriers}")

    @property
    def noise_power_dbm(self) -> float:
        """Noise power over the bandwidth [dBm]: -174 dBm/Hz + 10 log10(B) + NF."""
        return THERMAL_NOISE_DBM_PER_HZ + 10.0 * np.log10(self.bandwidth_hz) + self.noise_figure_db

    @property
    def snr_scale(self) -> float:
        """Linear SNR of a unit-gain channel: the per-subcarrier SNR is ``snr_scale * |f^H h_k|^2``."""
        return float(10.0 ** ((self.tx_power_dbm - self.noise_power_dbm) / 10.0))

    @property
    def subcarrier_spacing_hz(self) -> float:
        """Spacing of the evaluated subcarriers [Hz]."""
        return self.bandwidth_hz / self.num_subcarriers

    def to_dict(self) -> dict:
        """Plain-dict form, with the derived noise power, for reports."""
        return {**asdict(self), "noise_power_dbm": self.noise_power_dbm}

    @classmethod
    def from_dict(cls, values: dict) -> "LinkBudget":
        """Inverse of :meth:`to_dict` (derived entries ignored); unknown keys fail with their names."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known - {"noise_power_dbm"}
        if unknown:
            raise CkmsimError(f"Unknown link-budget field(s) {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**{k: v for k, v in values.items() if k in known})

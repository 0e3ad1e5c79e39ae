"""Antenna array geometry and steering vectors, laid out exactly as Sionna RT's ``PlanarArray``.

Sionna RT places a ``num_rows x num_cols`` planar array in the device's y-z plane, centred on the device:
columns along +y, rows along -z, elements enumerated column by column. With the device at its default
orientation a ULA (``num_rows = 1``) therefore lies along the y axis and its broadside is the x axis.
Using the same positions here makes the steering vectors below the ones Sionna applies to a synthetic
array, so an SCM synthesised from (gain, angle) and a ray-traced channel speak the same language.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import unit_vectors


@dataclass(frozen=True)
class AntennaArray:
    """Planar array of isotropic elements (a ULA when ``num_rows == 1``).

    Parameters
    ----------
    num_cols : int
        Elements along y (the ULA's length).
    num_rows : int
        Elements along z.
    spacing_wavelengths : float
        Element spacing in both directions [wavelengths]; 0.5 by default.
    """

    num_cols: int
    num_rows: int = 1
    spacing_wavelengths: float = 0.5

    def __post_init__(self):
        if self.num_cols < 1 or self.num_rows < 1:
            raise CkmsimError(f"AntennaArray needs at least one element. Received: num_rows={self.num_rows}, "
                              f"num_cols={self.num_cols}")
        if not self.spacing_wavelengths > 0:
            raise CkmsimError(f"AntennaArray spacing must be > 0. Received: {self.spacing_wavelengths}")

    @property
    def num_ant(self) -> int:
        """Number of elements."""
        return self.num_rows * self.num_cols

    def positions_wavelengths(self) -> np.ndarray:
        """``[num_ant, 3]``, float64: element positions relative to the array centre [wavelengths]."""
        d = self.spacing_wavelengths
        col_y = (np.arange(self.num_cols) - (self.num_cols - 1) / 2) * d
        row_z = ((self.num_rows - 1) / 2 - np.arange(self.num_rows)) * d
        # [num_cols, num_rows]: column-major enumeration, as Sionna's PlanarArray
        yy, zz = np.meshgrid(col_y, row_z, indexing="ij")
        return np.stack([np.zeros(yy.size), yy.ravel(), zz.ravel()], axis=-1)

    def steering_vectors(self, az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
        r"""Array response to plane waves from/to directions ``(az, el)``.

        .. math::
            [\mathbf{a}(\mathrm{az}, \mathrm{el})]_n = e^{\,j 2\pi \mathbf{r}_n^\mathsf{T} \mathbf{k}(\mathrm{az}, \mathrm{el})}

        with :math:`\mathbf{r}_n` in wavelengths. For a ULA along y this is eq. (2) of the E-SRResNet paper up
        to a common phase, with :math:`\cos\theta = \mathbf{k}^\mathsf{T}\hat{\mathbf{y}}`.

        Input
        -----
        az_deg, el_deg : [...], float

        Output
        ------
        a : [..., num_ant], complex128, unit-modulus entries
        """
        k = unit_vectors(az_deg, el_deg)
        phase = 2.0 * np.pi * (k @ self.positions_wavelengths().T)
        return np.exp(1j * phase)

"""DFT beam codebooks."""

from __future__ import annotations

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.antenna_array import AntennaArray


def dft_codebook(array: AntennaArray, oversampling: int = 1) -> np.ndarray:
    """Unit-norm DFT beams of a ULA, from Sionna's ``grid_of_beams_dft_ula``.

    Beam ``m`` has phase progression ``2 pi m / (N O)`` along the array; for half-wavelength spacing it
    points where :math:`\\cos\\theta = 2m/(NO)` (mod 2) with :math:`\\theta` the angle to the array axis.

    Input
    -----
    array : AntennaArray with ``num_rows == 1``
    oversampling : int

    Output
    ------
    codebook : [num_ant * oversampling, num_ant], complex128, rows of unit norm
    """
    from sionna.phy.mimo import grid_of_beams_dft_ula

    if array.num_rows != 1:
        raise CkmsimError(f"dft_codebook supports ULAs (num_rows=1) for now. Received: num_rows={array.num_rows}")
    if int(oversampling) != oversampling or oversampling < 1:
        raise CkmsimError(f"Codebook oversampling must be a positive integer. Received: {oversampling}")
    beams = np.array(grid_of_beams_dft_ula(array.num_cols, oversmpl=int(oversampling), precision="double"))
    return beams / np.linalg.norm(beams, axis=-1, keepdims=True)

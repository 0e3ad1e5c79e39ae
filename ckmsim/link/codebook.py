"""DFT beam codebooks of ULAs and UPAs, in the element order of :class:`~ckmsim.maps.antenna_array.AntennaArray`.

A UPA's grid of beams is the Kronecker product of two ULA grids, one per array dimension (3GPP TS 38.214
Sec. 5.2.2.2.1, Sionna's ``grid_of_beams_dft``). Sionna flattens each beam column by column, which is the
column-major element order of Sionna RT's ``PlanarArray`` and therefore of ``AntennaArray``: element
``n = col * num_rows + row``. The codebook is thus Sionna's grid, used as is.

Where a beam points. With element spacing :math:`d` [wavelengths], the steering vector of direction
:math:`(\\mathrm{az}, \\mathrm{el})` advances by :math:`2\\pi d u_\\mathrm{col}` per column and by
:math:`2\\pi d u_\\mathrm{row}` per row, with the direction cosines

.. math::
    u_\\mathrm{col} = \\cos(\\mathrm{el})\\sin(\\mathrm{az}) \\;(\\text{along } +y), \\qquad
    u_\\mathrm{row} = -\\sin(\\mathrm{el}) \\;(\\text{along } -z\\text{, the row direction}).

Beam :math:`(m_\\mathrm{row}, m_\\mathrm{col})` advances by :math:`2\\pi m_\\mathrm{col} / (N_\\mathrm{col} O_\\mathrm{col})`
per column and :math:`2\\pi m_\\mathrm{row} / (N_\\mathrm{row} O_\\mathrm{row})` per row, so its gain
:math:`|\\mathbf{f}^\\mathsf{H}\\mathbf{a}|^2` peaks at :math:`N = N_\\mathrm{row} N_\\mathrm{col}` where
:math:`d\\,u \\equiv m / (N O) \\pmod 1` in both dimensions, and is the product of two Fejer kernels elsewhere.
"""

from __future__ import annotations

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.validation import is_whole_number


def oversampling_per_dimension(array: AntennaArray, oversampling) -> tuple[int, int]:
    """``(oversampling_rows, oversampling_cols)`` of a codebook request.

    ``oversampling`` is one positive integer (the same in both dimensions) or a pair
    ``(rows, cols)``. A dimension with a single element has a single beam whatever its oversampling
    (every phase progression of one element is the same beam), so its factor is 1.
    """
    pair = tuple(oversampling) if isinstance(oversampling, (tuple, list, np.ndarray)) else (oversampling,) * 2
    if len(pair) != 2 or not all(is_whole_number(o, minimum=1) for o in pair):
        raise CkmsimError("Codebook oversampling must be a positive integer or a pair (rows, cols) of them. "
                          f"Received: oversampling={oversampling!r}")
    over_rows, over_cols = (int(o) for o in pair)
    return (over_rows if array.num_rows > 1 else 1), (over_cols if array.num_cols > 1 else 1)


def dft_codebook(array: AntennaArray, oversampling=1) -> np.ndarray:
    """Unit-norm DFT beams of a ULA or UPA, from Sionna's ``grid_of_beams_dft``.

    Beam index ``b = m_row * (num_cols * O_col) + m_col``; for a ULA (``num_rows == 1``) ``b = m_col`` and
    the grid is Sionna's ``grid_of_beams_dft_ula``: beam ``m`` points where
    :math:`\\cos\\theta = 2m/(NO)` (mod 2) for half-wavelength spacing, :math:`\\theta` the angle to the array
    axis. See the module docstring for the UPA directions and :func:`dft_beam_spatial_frequencies`.

    Input
    -----
    array : AntennaArray
    oversampling : int or (int, int)
        Grid oversampling, one factor for both dimensions or ``(rows, cols)``.

    Output
    ------
    codebook : [num_beams, num_ant], complex128, rows of unit norm;
        ``num_beams = num_rows O_row * num_cols O_col``. Unitary when the oversampling is 1.
    """
    from sionna.phy.mimo import grid_of_beams_dft

    over_rows, over_cols = oversampling_per_dimension(array, oversampling)
    # [num_rows O_row, num_cols O_col, num_ant], elements flattened column by column like PlanarArray
    grid = np.array(grid_of_beams_dft(array.num_rows, array.num_cols, oversmpl_v=over_rows, oversmpl_h=over_cols,
                                      precision="double"))
    beams = grid.reshape(-1, array.num_ant)
    return beams / np.linalg.norm(beams, axis=-1, keepdims=True)


def dft_beam_spatial_frequencies(array: AntennaArray, oversampling=1) -> np.ndarray:
    """Direction cosines ``(u_row, u_col)`` at which each beam of :func:`dft_codebook` has its full gain N.

    Values are wrapped to :math:`[-1/(2d), 1/(2d))` (``[-1, 1)`` for half-wavelength spacing); a beam whose
    point lies outside the unit disc (:math:`u_\\mathrm{row}^2 + u_\\mathrm{col}^2 > 1`) peaks in no real
    direction. The direction of a visible beam in front of the array is
    :math:`\\mathrm{el} = -\\arcsin u_\\mathrm{row}`, :math:`\\mathrm{az} = \\arcsin(u_\\mathrm{col} / \\cos\\mathrm{el})`.

    Input
    -----
    array : AntennaArray
    oversampling : int or (int, int)

    Output
    ------
    u : [num_beams, 2], float64, columns ``(u_row, u_col)`` in the beam order of :func:`dft_codebook`
    """
    over_rows, over_cols = oversampling_per_dimension(array, oversampling)
    spacing = array.spacing_wavelengths

    def grid_1d(num_ant: int, over: int) -> np.ndarray:
        # d u = m / (N O) mod 1, folded into [-1/2, 1/2) / d
        phase_cycles = np.arange(num_ant * over) / (num_ant * over)
        return (np.mod(phase_cycles + 0.5, 1.0) - 0.5) / spacing

    u_row, u_col = np.meshgrid(grid_1d(array.num_rows, over_rows), grid_1d(array.num_cols, over_cols), indexing="ij")
    return np.stack([u_row.ravel(), u_col.ravel()], axis=-1)

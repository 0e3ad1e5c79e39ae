"""Spatial correlation matrices (SCM) synthesised from path gains and angles.

E-SRResNet eq. (5)-(6): with independent, uniformly distributed path phases, the correlation matrix of
:math:`\\mathbf{h} = \\sum_\\ell \\alpha_\\ell \\mathbf{a}(\\theta_\\ell)` is

.. math::
    \\mathbf{R} = \\mathbb{E}[\\mathbf{h}\\mathbf{h}^\\mathsf{H}]
               = \\sum_{\\ell=0}^{L-1} \\mathbb{E}[|\\alpha_\\ell|^2]\\, \\mathbf{a}(\\theta_\\ell)\\mathbf{a}^\\mathsf{H}(\\theta_\\ell),

so an SCM is fully described by the L strongest paths' power gains and angles (the PGM and PAM).
"""

from __future__ import annotations

import numpy as np

from ckmsim.maps.antenna_array import AntennaArray


def scm_from_paths(path_gain_db: np.ndarray, az_deg: np.ndarray, el_deg: np.ndarray,
                   array: AntennaArray) -> np.ndarray:
    """SCM of eq. (5) from per-path power gains and angles.

    Paths whose gain or angles are NaN (absent) contribute nothing.

    Input
    -----
    path_gain_db : [..., num_paths], float
        Power gain :math:`\\mathbb{E}[|\\alpha_\\ell|^2]` of each path [dB].
    az_deg, el_deg : [..., num_paths], float
        Angles of each path at the array [deg].
    array : AntennaArray

    Output
    ------
    scm : [..., num_ant, num_ant], complex128, Hermitian positive semi-definite
    """
    power = np.power(10.0, np.asarray(path_gain_db, dtype=np.float64) / 10.0)
    present = np.isfinite(power) & np.isfinite(az_deg) & np.isfinite(el_deg)
    power = np.where(present, power, 0.0)
    # [..., num_paths, num_ant]
    steering = array.steering_vectors(np.where(present, az_deg, 0.0), np.where(present, el_deg, 0.0))
    weighted = steering * np.sqrt(power)[..., None]
    # [..., num_ant, num_ant] = sum over paths of p_l a_l a_l^H
    return np.einsum("...lm,...ln->...mn", weighted, weighted.conj())

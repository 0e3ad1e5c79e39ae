"""The one angle convention of ckmsim, shared by maps, SCM synthesis and the link.

Azimuth ``az`` is measured in the scene's x-y plane from +x towards +y, in (-180, 180] deg; elevation
``el`` from that plane towards +z, in [-90, 90] deg. Sionna RT reports zenith ``theta`` and azimuth ``phi``
[rad]; ``el = 90 deg - theta`` and ``az = phi``. Degrees live at the edges (CKM variables), radians inside
the maths.
"""

from __future__ import annotations

import numpy as np


def wrap_deg(angle_deg: np.ndarray) -> np.ndarray:
    """Wrap angles to (-180, 180] deg. Any shape; NaN stays NaN."""
    wrapped = np.mod(np.asarray(angle_deg, dtype=np.float64) + 180.0, 360.0) - 180.0
    return np.where(wrapped == -180.0, 180.0, wrapped)


def angle_difference_deg(a_deg: np.ndarray, b_deg: np.ndarray) -> np.ndarray:
    """Signed smallest difference ``a - b`` on the circle, in (-180, 180] deg."""
    return wrap_deg(np.asarray(a_deg) - np.asarray(b_deg))


def sionna_to_az_el_deg(theta_rad: np.ndarray, phi_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sionna RT's (zenith ``theta``, azimuth ``phi``) [rad] -> ckmsim's (az, el) [deg]."""
    az_deg = wrap_deg(np.degrees(phi_rad))
    el_deg = 90.0 - np.degrees(theta_rad)
    return az_deg, el_deg


def unit_vectors(az_deg: np.ndarray, el_deg: np.ndarray) -> np.ndarray:
    """Unit direction vectors ``[..., 3]`` (x, y, z) of angles ``[...]`` [deg]."""
    az = np.radians(az_deg)
    el = np.radians(el_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def direction_to_az_el_deg(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(az, el) [deg] of direction vectors ``[..., 3]`` (need not be normalised)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    horizontal = np.hypot(vectors[..., 0], vectors[..., 1])
    az_deg = wrap_deg(np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])))
    el_deg = np.degrees(np.arctan2(vectors[..., 2], horizontal))
    return az_deg, el_deg

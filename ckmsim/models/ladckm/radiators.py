r"""Virtual radiator sampling (LAD-CKM Sec. III-B): directions on a spherical Fibonacci grid, uniform radial
samples along each direction.

LAD-CKM casts :math:`N_a` rays from the UE's array and places :math:`N_s` radiators on each; the network is told
each ray's direction :math:`\boldsymbol\omega_i` (the *direction indicator*) and each radiator's interval
:math:`\delta_{ij}` (the *distance indicator*), never a position: the map is location-agnostic. The paper
cites Swinbank and Purser's Fibonacci grid for the directions and says the radial sampling is uniform; it gives
neither :math:`N_a`, :math:`N_s` nor the ray length.

- :func:`fibonacci_directions`: :math:`N_a` unit vectors, point :math:`k` at height
  :math:`z_k = 1 - (2k + 1)/N_a` and azimuth :math:`k \cdot 2\pi/\varphi^2` (:math:`\varphi` the golden ratio),
  so every point stands for the same solid angle :math:`4\pi/N_a`;
- :func:`radial_intervals`: :math:`N_s` equal intervals of ``max_distance_m`` (their midpoints at inference),
  or, in training, NeRF's stratified sampling -- one uniform draw per interval -- whose intervals
  :math:`\delta_{ij}` between consecutive samples then vary and carry information for the ADM's radial stage.
"""

from __future__ import annotations

import math

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_positive_int, is_finite_number

#: The golden ratio.
GOLDEN_RATIO = (1.0 + math.sqrt(5.0)) / 2.0


def fibonacci_directions(num_directions: int) -> np.ndarray:
    """``[num_directions, 3]`` float32 unit vectors spread evenly over the sphere (module docstring)."""
    check_positive_int(num_directions, "num_directions")
    k = np.arange(int(num_directions), dtype=np.float64)
    z = 1.0 - (2.0 * k + 1.0) / num_directions
    azimuth = k * 2.0 * math.pi / GOLDEN_RATIO ** 2
    radius = np.sqrt(np.maximum(0.0, 1.0 - z ** 2))
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z], axis=-1).astype(np.float32)


def radial_intervals(num_directions: int, num_samples: int, max_distance_m: float,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    r"""``[num_directions, num_samples]`` float32 intervals :math:`\delta_{ij}` [m] between consecutive radiators.

    Without ``rng``: every radiator at the midpoint of its ``max_distance_m / num_samples`` stretch, every
    interval equal to it. With ``rng``: radiator ``j`` of ray ``i`` drawn uniformly in its stretch
    (stratified), :math:`\delta_{ij} = d_{i,j+1} - d_{ij}` and the last one reaching ``max_distance_m``; the
    intervals of a ray always sum to ``max_distance_m`` minus its first radiator's distance.
    """
    for name, value in (("num_directions", num_directions), ("num_samples", num_samples)):
        check_positive_int(value, name)
    if not (is_finite_number(max_distance_m) and max_distance_m > 0):
        raise CkmsimError(f"max_distance_m must be a number > 0. Received: max_distance_m={max_distance_m!r}")
    stretch = float(max_distance_m) / int(num_samples)
    if rng is None:
        return np.full((int(num_directions), int(num_samples)), stretch, dtype=np.float32)
    # [N_a, N_s] radiator distances, one uniform draw per stretch, then the gaps to the next (the last to the end)
    distance = (np.arange(num_samples) + rng.random((int(num_directions), int(num_samples)))) * stretch
    following = np.concatenate([distance[:, 1:], np.full((int(num_directions), 1), float(max_distance_m))], axis=1)
    return (following - distance).astype(np.float32)

r"""Per-cell physics the cross-AP UNet is given beside the paper's input (issue 14).

The paper's input (eqs. (3)-(5)) tells the network where the target AP is and what the known APs' maps look
like, but not how far each cell is from the target nor what eq. (7) would infer; a small network on a few
dozen areas learns neither cheaply. :func:`physics_maps` computes, for one target AP and its known APs:

- ``distance_weighted``: the distance-weighted inference of eq. (7),
  :math:`\sum_n w_n G_n` with :math:`w_n = \mathrm{softmax}_n(-\beta d_{t,n})` on the clipped known maps,
  computed by the benchmark's own :func:`~ckmsim.baselines.model_based.distance_weighted_cross_ap`. The
  network adds its output to this map, so an untrained network (last convolution zero) *is* eq. (7);
- ``free_space``: the target's Friis free-space gain :math:`20\log_{10}(\lambda / 4\pi d)` at each cell,
  ``d`` the 3-D distance from the target AP to the cell centre at UE height;
- ``excess_weighted``: the target's free-space gain plus eq. (7) applied to the known APs' *excess* loss
  :math:`G_n - FS_n` (their map minus their own free-space gain): the weighting then transfers shadowing,
  which varies slowly between nearby APs, instead of maps whose peaks sit at the known APs.

and, from the building map alone (:func:`blockage_map`), how far the straight horizontal line from the
target to each cell runs inside buildings (0: the target is in 2-D line of sight) -- a non-local quantity
that a few 5 x 5 convolutions see only over a few cells.

The three gain maps are in dB on ``[num_y, num_x]`` and clipped to ``gain_range_db`` (as the maps they are compared
with); building cells are NaN. The cell heights come from the grid (``grid.height_m`` above z = 0: the
stored areas hold no ground layer; ckmsim's generated cities are flat).
"""

from __future__ import annotations

import numpy as np

from ckmsim.baselines.model_based import distance_weighted_cross_ap
from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.validation import is_finite_number

#: Speed of light [m/s].
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: The paper's weight parameter of eq. (7) [1/m].
PAPER_BETA_PER_M = 0.1
#: Names of :func:`physics_maps`' maps, in the order the encoding stacks them.
PHYSICS_MAPS = ("distance_weighted", "free_space", "excess_weighted")


def free_space_gain_db(distance_m: np.ndarray, frequency_hz: float) -> np.ndarray:
    r"""Friis free-space gain of isotropic antennas, :math:`20\log_{10}(\lambda / 4\pi d)` [dB].

    Input: ``distance_m`` ``[...]`` [m], > 0; ``frequency_hz`` [Hz], > 0. Output: ``[...]`` float64 [dB].
    """
    if not (is_finite_number(frequency_hz) and float(frequency_hz) > 0):
        raise CkmsimError(f"frequency_hz must be a finite number > 0. Received: frequency_hz={frequency_hz!r}")
    distance_m = np.asarray(distance_m, dtype=np.float64)
    if np.any(~(distance_m > 0)):
        raise CkmsimError("free_space_gain_db needs distances > 0 [m]")
    wavelength_m = SPEED_OF_LIGHT_M_S / float(frequency_hz)
    return 20.0 * np.log10(wavelength_m / (4.0 * np.pi * distance_m))


def free_space_map_db(grid: Grid, position_m, frequency_hz: float) -> np.ndarray:
    """Free-space gain [dB] of an AP at ``position_m`` (x, y, z) [m] to every cell centre at UE height
    (distances under 1 cm are raised to 1 cm: an AP never stands at UE height in ckmsim).

    ``position_m`` ``[3]`` -> ``[num_y, num_x]``; ``[K, 3]`` -> ``[K, num_y, num_x]``, float64 [dB].
    """
    position = np.asarray(position_m, dtype=np.float64)
    if position.ndim not in (1, 2) or position.shape[-1] != 3 or not np.all(np.isfinite(position)):
        raise CkmsimError(f"The free-space map needs AP positions (x, y, z) [m], [3] or [K, 3]. "
                          f"Received: {position.tolist()}")
    # [y, x, 3] - [K, 1, 1, 3] -> [K, y, x]
    centers = grid.cell_centers_m()
    distance_m = np.linalg.norm(centers[None] - position.reshape(-1, 1, 1, 3), axis=-1)
    gain_db = free_space_gain_db(np.maximum(distance_m, 1e-2), frequency_hz)
    return gain_db[0] if position.ndim == 1 else gain_db


def physics_maps(grid: Grid, building: np.ndarray, target_position_m, known_gain_db: np.ndarray,
                 known_positions_m: np.ndarray, frequency_hz: float, gain_range_db: tuple[float, float],
                 beta_per_m: float = PAPER_BETA_PER_M) -> dict[str, np.ndarray]:
    """The maps of the module docstring for one target AP.

    Input
    -----
    grid : Grid of the area
    building : ``[num_y, num_x]``, bool
    target_position_m : ``[3]`` (x, y, z) [m]
    known_gain_db : ``[K, num_y, num_x]`` [dB] (NaN on buildings, floor values allowed), K >= 1
    known_positions_m : ``[K, 3]`` [m]
    frequency_hz : carrier [Hz]
    gain_range_db : (low, high) [dB], the clip range of the maps (the study's and the encoding's)
    beta_per_m : eq. (7)'s beta [1/m]

    Output
    ------
    maps : dict name -> ``[num_y, num_x]`` float64 [dB], NaN on building cells (names in ``PHYSICS_MAPS``)
    """
    building = np.asarray(building, dtype=bool)
    maps = np.asarray(known_gain_db, dtype=np.float64)
    positions = np.asarray(known_positions_m, dtype=np.float64)
    target = np.asarray(target_position_m, dtype=np.float64).ravel()
    if maps.ndim != 3 or maps.shape[0] < 1 or maps.shape[1:] != grid.shape or building.shape != grid.shape:
        raise CkmsimError(f"known_gain_db must be [K >= 1, {grid.num_y}, {grid.num_x}] and building "
                          f"[{grid.num_y}, {grid.num_x}]. Received: {maps.shape} and {building.shape}")
    if positions.shape != (maps.shape[0], 3) or target.shape != (3,):
        raise CkmsimError(f"The physics maps need 3-D positions: target [3] and known [{maps.shape[0]}, 3] (x, y, z) "
                          f"[m]. Received: {target.shape} and {positions.shape}")
    low, high = (float(v) for v in gain_range_db)
    with np.errstate(invalid="ignore"):
        # [K, y, x], as the study clips every map before eq. (7)
        clipped = np.clip(maps, low, high)
    # eq. (7) weighs by horizontal distance, as the benchmark does in the study
    weighted = distance_weighted_cross_ap(clipped, positions[:, :2], target[:2], beta=beta_per_m)
    free_space = free_space_map_db(grid, target, frequency_hz)
    known_free_space = free_space_map_db(grid, positions, frequency_hz)
    excess = distance_weighted_cross_ap(clipped - known_free_space, positions[:, :2], target[:2], beta=beta_per_m)
    out = {"distance_weighted": weighted, "free_space": free_space, "excess_weighted": free_space + excess}
    with np.errstate(invalid="ignore"):
        return {name: np.where(building, np.nan, np.clip(value, low, high)) for name, value in out.items()}


#: Blockage maps already computed, keyed by the building map, cell, cell size and sample count (training
#: revisits every (area, target) pair each epoch).
_BLOCKAGE_CACHE: dict = {}
_BLOCKAGE_CACHE_SIZE = 8192


def blockage_map(building: np.ndarray, target_cell, cell_size_m: float = 1.0, samples: int = 128) -> np.ndarray:
    """Length of the straight horizontal line from the centre of ``target_cell`` to each cell centre that runs
    inside building cells [m] (``cell_size_m`` per cell; 2-D: building heights are not known to the area).

    Each segment is sampled at ``samples`` equally spaced midpoints; the length inside is the segment's
    length times the share of samples that fall in a building cell (so a one-cell wall crossed at an angle
    counts more than one crossed straight on, as the path through it is longer).

    Input
    -----
    building : ``[num_y, num_x]``, bool
    target_cell : (row, col)
    cell_size_m : float, > 0

    Output
    ------
    length_m : ``[num_y, num_x]``, float32, >= 0 (0 on the target's cell and wherever it sees in 2-D)
    """
    building = np.asarray(building, dtype=bool)
    if building.ndim != 2:
        raise CkmsimError(f"building must be [num_y, num_x] bool. Received: shape={building.shape}")
    num_y, num_x = building.shape
    row0, col0 = (int(v) for v in target_cell)
    if not (0 <= row0 < num_y and 0 <= col0 < num_x):
        raise CkmsimError(f"target_cell must lie in the {building.shape} grid. Received: target_cell={target_cell!r}")
    if not (is_finite_number(cell_size_m) and cell_size_m > 0):
        raise CkmsimError(f"cell_size_m must be > 0. Received: cell_size_m={cell_size_m!r}")
    key = (building.tobytes(), building.shape, row0, col0, float(cell_size_m), int(samples))
    if key in _BLOCKAGE_CACHE:
        return _BLOCKAGE_CACHE[key].copy()
    rows, cols = np.meshgrid(np.arange(num_y), np.arange(num_x), indexing="ij")
    # [samples, 1, 1] midpoints along every segment; [samples, y, x] the cells they fall in (centres at
    # integer indices)
    t = ((np.arange(samples) + 0.5) / samples)[:, None, None]
    sample_rows = np.clip(np.rint(row0 + t * (rows - row0)), 0, num_y - 1).astype(np.int64)
    sample_cols = np.clip(np.rint(col0 + t * (cols - col0)), 0, num_x - 1).astype(np.int64)
    inside = building[sample_rows, sample_cols].mean(axis=0)
    length_m = (inside * np.hypot(rows - row0, cols - col0) * float(cell_size_m)).astype(np.float32)
    if len(_BLOCKAGE_CACHE) >= _BLOCKAGE_CACHE_SIZE:
        _BLOCKAGE_CACHE.pop(next(iter(_BLOCKAGE_CACHE)))
    _BLOCKAGE_CACHE[key] = length_m
    return length_m.copy()

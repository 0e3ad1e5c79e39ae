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
from ckmsim.validation import is_finite_number, is_whole_number

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
    _remember(_BLOCKAGE_CACHE, key, length_m, _BLOCKAGE_CACHE_SIZE)
    return length_m.copy()


# ----------------------------------------------------------------------------------------------------------
# Visibility order: how many corners a path from the AP must turn
# ----------------------------------------------------------------------------------------------------------

#: Open-cell visibility matrices already computed, keyed by the building map (one per area: every AP of an
#: area shares it).
_VISIBILITY_CACHE: dict = {}
_VISIBILITY_CACHE_SIZE = 512
#: Order and detour maps already computed, keyed by the building map and the AP's cell (training revisits every
#: (area, AP) pair each epoch, as target and as known AP).
_PER_AP_CACHE: dict = {}
_PER_AP_CACHE_SIZE = 16384


def _remember(cache: dict, key, value, size: int) -> None:
    """Store ``value`` under ``key``, dropping the oldest entry once ``cache`` holds ``size``."""
    if len(cache) >= size:
        cache.pop(next(iter(cache)))
    cache[key] = value


def open_cell_visibility(building: np.ndarray, samples: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Which open cells see which in 2-D: the straight segment between their centres crosses no building cell.

    A segment is tested at ``samples`` equally spaced midpoints, each in the cell it falls in, as
    :func:`blockage_map` does (so ``visible[i, j]`` is exactly ``blockage_map(building, cell_i)[cell_j] == 0``).

    Input: ``building`` ``[num_y, num_x]`` bool. Output: ``cells`` ``[M, 2]`` int (row, col) of the M open
    cells in row-major order and ``visible`` ``[M, M]`` bool, symmetric up to the rounding of midpoints.
    """
    building = np.asarray(building, dtype=bool)
    if building.ndim != 2:
        raise CkmsimError(f"building must be [num_y, num_x] bool. Received: shape={building.shape}")
    key = (building.tobytes(), building.shape, int(samples))
    if key in _VISIBILITY_CACHE:
        return _VISIBILITY_CACHE[key]
    num_y, num_x = building.shape
    cells = np.argwhere(~building)
    visible = np.zeros((len(cells), len(cells)), dtype=bool)
    # [samples, 1, 1] midpoints of every (source, destination) segment, a few sources at a time to bound memory
    t = ((np.arange(samples) + 0.5) / samples)[:, None, None]
    chunk = max(1, 2_000_000 // max(1, samples * len(cells)))
    for start in range(0, len(cells), chunk):
        sources = cells[start:start + chunk]
        # [samples, S, M] cells the midpoints fall in
        rows = np.rint(sources[None, :, None, 0] + t * (cells[None, None, :, 0] - sources[None, :, None, 0]))
        cols = np.rint(sources[None, :, None, 1] + t * (cells[None, None, :, 1] - sources[None, :, None, 1]))
        rows = np.clip(rows, 0, num_y - 1).astype(np.int64)
        cols = np.clip(cols, 0, num_x - 1).astype(np.int64)
        visible[start:start + len(sources)] = ~building[rows, cols].any(axis=0)
    _remember(_VISIBILITY_CACHE, key, (cells, visible), _VISIBILITY_CACHE_SIZE)
    return cells, visible


def visibility_order_map(building: np.ndarray, ap_cell, max_order: int = 3) -> np.ndarray:
    """Fewest straight 2-D legs, minus one, that join the AP's cell to each open cell through open cells.

    Order 0: the cell sees the AP (``blockage_map == 0``); order ``k + 1``: the cell is not of order ``<= k``
    but sees an open cell of order ``k`` -- a path that turns ``k + 1`` corners (a reflection or diffraction
    near that cell). Cells of an order above ``max_order`` (and open cells cut off from the AP) get
    ``max_order + 1``: with the ray tracer's ``max_depth = 3`` no specular or diffracted path in the
    horizontal plane reaches them, only paths over the roofs or around the tile. Building cells are
    ``max_order + 1`` too (they take no part in any score).

    Input: ``building`` ``[num_y, num_x]`` bool, ``ap_cell`` (row, col), ``max_order`` >= 0.
    Output: ``[num_y, num_x]`` int16 in ``[0, max_order + 1]``.
    """
    if not is_whole_number(max_order, minimum=0):
        raise CkmsimError(f"max_order must be an integer >= 0. Received: max_order={max_order!r}")
    max_order = int(max_order)
    building = np.asarray(building, dtype=bool)
    key = ("order", building.tobytes(), building.shape, *(int(v) for v in np.ravel(ap_cell)), max_order)
    if key not in _PER_AP_CACHE:
        _remember(_PER_AP_CACHE, key, _visibility_order(building, ap_cell, max_order), _PER_AP_CACHE_SIZE)
    return _PER_AP_CACHE[key].copy()


def _visibility_order(building: np.ndarray, ap_cell, max_order: int) -> np.ndarray:
    """:func:`visibility_order_map`, uncached."""
    cells, visible = open_cell_visibility(building)
    order = np.full(building.shape, max_order + 1, dtype=np.int16)
    # order 0 from the AP's own cell, which may be a building cell (an AP above a roof edge)
    seen = (blockage_map(building, ap_cell) == 0)[cells[:, 0], cells[:, 1]]
    reached = seen.copy()
    frontier = seen
    for k in range(max_order + 1):
        order[cells[frontier, 0], cells[frontier, 1]] = k
        if k == max_order:
            break
        frontier = visible[frontier].any(axis=0) & ~reached
        if not frontier.any():
            break
        reached |= frontier
    return order


def _visibility_graph(building: np.ndarray):
    """``(cells [M, 2], visible [M, M], legs)``: :func:`open_cell_visibility` and its visible pairs as a sparse
    graph weighted by the length of each straight leg [cells] (cached with the visibility matrix)."""
    from scipy.sparse import csr_matrix

    cells, visible = open_cell_visibility(building)
    key = ("graph", np.asarray(building, dtype=bool).tobytes(), building.shape)
    if key not in _VISIBILITY_CACHE:
        rows, cols = np.nonzero(visible)
        length = np.hypot(*(cells[rows] - cells[cols]).T)
        keep = length > 0
        legs = csr_matrix((length[keep], (rows[keep], cols[keep])), shape=visible.shape)
        _remember(_VISIBILITY_CACHE, key, legs, _VISIBILITY_CACHE_SIZE)
    return cells, visible, _VISIBILITY_CACHE[key]


def detour_map(building: np.ndarray, ap_cell, cell_size_m: float = 1.0) -> np.ndarray:
    """How much longer the shortest horizontal path from the AP through open space is than the straight line
    to each cell centre [m]: 0 where the cell sees the AP, larger the further a path must bend round buildings.

    The shortest path runs along straight legs between open cells that see each other (the visibility graph
    of :func:`open_cell_visibility`, Dijkstra by :func:`scipy.sparse.csgraph.dijkstra`), starting with a leg
    from the AP's cell to a cell it sees; open cells that no path reaches get the largest finite detour of
    the map. Building cells are 0.

    Input: ``building`` ``[num_y, num_x]`` bool, ``ap_cell`` (row, col), ``cell_size_m`` > 0.
    Output: ``[num_y, num_x]`` float32 [m], >= 0.
    """
    if not (is_finite_number(cell_size_m) and cell_size_m > 0):
        raise CkmsimError(f"cell_size_m must be > 0. Received: cell_size_m={cell_size_m!r}")
    building = np.asarray(building, dtype=bool)
    key = ("detour", building.tobytes(), building.shape, *(int(v) for v in np.ravel(ap_cell)), float(cell_size_m))
    if key not in _PER_AP_CACHE:
        _remember(_PER_AP_CACHE, key, _detour(building, ap_cell, float(cell_size_m)), _PER_AP_CACHE_SIZE)
    return _PER_AP_CACHE[key].copy()


def _detour(building: np.ndarray, ap_cell, cell_size_m: float) -> np.ndarray:
    """:func:`detour_map`, uncached."""
    from scipy.sparse import bmat, csr_matrix
    from scipy.sparse.csgraph import dijkstra

    cells, _, legs = _visibility_graph(building)
    ap = np.asarray(ap_cell, dtype=np.int64).ravel()
    seen = (blockage_map(building, ap) == 0)[cells[:, 0], cells[:, 1]]
    # node M is the AP: a leg to every open cell it sees (distance 0 to its own cell, kept apart from "no edge"
    # by a tiny length)
    first = np.maximum(np.hypot(*(cells[seen] - ap).T), 1e-9)
    source = csr_matrix((first, (np.zeros(seen.sum(), dtype=np.int64), np.flatnonzero(seen))),
                        shape=(1, len(cells)))
    graph = bmat([[legs, csr_matrix((len(cells), 1))], [source, csr_matrix((1, 1))]], format="csr")
    path = dijkstra(graph, directed=True, indices=len(cells))[:len(cells)]
    straight = np.hypot(*(cells - ap).T)
    detour = np.maximum(path - straight, 0.0)
    # the straight line itself where the AP is seen (float sums of one leg, the AP's cell's tiny leg)
    detour[seen] = 0.0
    finite = np.isfinite(detour)
    detour[~finite] = detour[finite].max() if finite.any() else 0.0
    out = np.zeros(building.shape, dtype=np.float32)
    out[cells[:, 0], cells[:, 1]] = detour * float(cell_size_m)
    return out

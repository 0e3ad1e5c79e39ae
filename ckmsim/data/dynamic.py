"""Dynamic-CSI samples: coherence blocks with moving cars and pedestrians, a UE drop per block (LAD-CKM).

A dataset built with a ``[dynamic]`` section (:class:`~ckmsim.data.config.DynamicSettings`) holds, per
sample (one tile, one BS) and coherence block ``b``:

=============================== ============================ =====================================================
variable                        dims                         meaning
=============================== ============================ =====================================================
``block_cars``                  (block, car, car_pose)       x, y, z [m] and yaw [deg] of every car
``block_pedestrians``           (block, pedestrian, xyz)     x, y, z [m] of every pedestrian
``block_ue_cell``               (block, ue, rc)              (row, col) of each UE's cell
``block_ue_position_m``         (block, ue, xyz)             the UE's position (cell centre at UE height) [m]
``{dl,ul}_path_<name>``         (block, ue, csi_path)        the ``max_paths`` strongest BS -> UE paths on the
                                                             downlink / uplink carrier, ``<name>`` in
                                                             :data:`~ckmsim.raytrace.csi.STORED_PATH_VARIABLES`
=============================== ============================ =====================================================

beside the sample's static map layers (traced before any object was added: what a location-based CKM
knows). :func:`read_dynamic_csi` applies any BS and UE array to the stored paths, so one trace serves every
``(N_t, N_r)`` of the paper's sweep; :func:`upa_shape` gives the planar array of ``N`` elements.

Splits. The builder splits by tile (area) as every ckmsim dataset; :func:`block_split` gives the paper's
other split, by time: the last blocks of every sample are tested, the ones before them validate.

Block ``b`` of a sample is reproducible on its own: the objects come from ``default_rng([seed, b])``
(:meth:`~ckmsim.scene.dynamic.DynamicScene.draw`), the UE drop from ``default_rng([seed, b, UE_STREAM])``.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.csi import (CARRIERS, STORED_PATH_VARIABLES, CsiSettings, carrier_channel,
                                 dropped_power_share, paths_from_arrays, trace_carrier_paths, truncate_paths)
from ckmsim.validation import check_positive_int, is_whole_number

#: Third entry of a block's UE-drop seed (the objects use ``[seed, block]``).
UE_STREAM = 1
#: Clearance around an object's footprint inside which no UE is dropped [m].
UE_CLEARANCE_M = 0.25


def stored_path_name(carrier: str, name: str) -> str:
    """Store variable of one path quantity on one carrier, e.g. ``dl_path_a``."""
    return f"{carrier}_path_{name}"


# ----------------------------------------------------------------------------------------------------------
# Building a sample's blocks
# ----------------------------------------------------------------------------------------------------------

def covered_cells(grid: Grid, cars: np.ndarray, pedestrians: np.ndarray, car_size_m, pedestrian_size_m,
                  clearance_m: float = UE_CLEARANCE_M) -> np.ndarray:
    """``[num_y, num_x]`` bool: cells whose centre lies inside an object's footprint grown by ``clearance_m``.

    ``cars`` ``[N, 4]`` (x, y, z, yaw [deg]) with footprint ``car_size_m[:2]`` (length along the yaw, width);
    ``pedestrians`` ``[M, 3]`` with the axis-aligned footprint ``pedestrian_size_m[:2]``.
    """
    centers = grid.cell_centers_m()[..., :2]
    covered = np.zeros(grid.shape, dtype=bool)
    boxes = [(x, y, yaw, car_size_m) for x, y, _, yaw in np.asarray(cars).reshape(-1, 4)]
    boxes += [(x, y, 0.0, pedestrian_size_m) for x, y, _ in np.asarray(pedestrians).reshape(-1, 3)]
    for x, y, yaw_deg, size in boxes:
        yaw = math.radians(float(yaw_deg))
        dx, dy = centers[..., 0] - x, centers[..., 1] - y
        # the cell centre in the object's frame: along its length, across it
        along = dx * math.cos(yaw) + dy * math.sin(yaw)
        across = -dx * math.sin(yaw) + dy * math.cos(yaw)
        covered |= (np.abs(along) <= size[0] / 2 + clearance_m) & (np.abs(across) <= size[1] / 2 + clearance_m)
    return covered


def drop_ues(open_cells: np.ndarray, num_ues: int, rng: np.random.Generator) -> np.ndarray:
    """``[num_ues, 2]`` distinct (row, col) cells drawn uniformly from the True cells of ``open_cells``."""
    candidates = np.argwhere(open_cells)
    if len(candidates) < num_ues:
        raise CkmsimError(f"csi.num_ues={num_ues} exceeds the {len(candidates)} open cells left free by the moving "
                          f"objects of this block: drop fewer UEs or place fewer objects")
    return candidates[rng.choice(len(candidates), size=num_ues, replace=False)].astype(np.int32)


def trace_blocks(scene, grid: Grid, building: np.ndarray, ground_m, bs_position_m, csi: CsiSettings, dynamic,
                 settings, seed: int) -> tuple[dict, dict]:
    """Trace every coherence block of one sample (module docstring) and take the objects out again.

    Input
    -----
    scene : sionna.rt.Scene of the sample (static: the objects are added here and removed before returning)
    grid : the tile's Grid; building : ``[num_y, num_x]`` bool; ground_m : ``[num_y, num_x]`` or None
    bs_position_m : (x, y, z) [m]
    csi : CsiSettings (carriers, numerology, ``num_ues`` per block)
    dynamic : :class:`~ckmsim.data.config.DynamicSettings`
    settings : RayTracingSettings (its frequency is replaced per carrier)
    seed : the sample's seed

    Output
    ------
    arrays : dict name -> (dims, array), the variables of the module docstring
    info : dict with ``timings_s`` (solver seconds) and ``max_dropped_power_share`` (largest share of a UE's
        path power beyond the ``max_paths`` stored)
    """
    from ckmsim.scene.dynamic import DynamicScene

    objects = dynamic.objects
    num_blocks = dynamic.num_blocks
    cars = np.zeros((num_blocks, objects.num_cars, 4))
    pedestrians = np.zeros((num_blocks, objects.num_pedestrians, 3))
    cells = np.zeros((num_blocks, csi.num_ues, 2), dtype=np.int32)
    positions = np.zeros((num_blocks, csi.num_ues, 3))
    paths = {(c, n): [] for c in CARRIERS for n in STORED_PATH_VARIABLES}
    solver_s, worst_dropped = 0.0, 0.0
    started = time.perf_counter()
    moving = DynamicScene(scene, grid, objects, seed=seed)
    try:
        for block in range(num_blocks):
            cars[block], pedestrians[block] = moving.redraw(block)
            free = ~np.asarray(building, dtype=bool) & ~covered_cells(
                grid, cars[block], pedestrians[block], objects.car_size_m, objects.pedestrian_size_m)
            cells[block] = drop_ues(free, csi.num_ues, np.random.default_rng([seed, block, UE_STREAM]))
            positions[block] = grid.cell_centers_m(ground_m)[cells[block, :, 0], cells[block, :, 1]]
            for carrier, field_name in CARRIERS.items():
                traced, seconds = trace_carrier_paths(scene, bs_position_m, positions[block],
                                                      getattr(csi, field_name), csi, settings)
                solver_s += seconds
                worst_dropped = max(worst_dropped, float(np.max(dropped_power_share(traced, dynamic.max_paths))))
                for name, values in truncate_paths(traced, dynamic.max_paths).items():
                    paths[(carrier, name)].append(values)
    finally:
        moving.remove()
    arrays = {"block_cars": (("block", "car", "car_pose"), cars),
              "block_pedestrians": (("block", "pedestrian", "xyz"), pedestrians),
              "block_ue_cell": (("block", "ue", "rc"), cells),
              "block_ue_position_m": (("block", "ue", "xyz"), positions)}
    for (carrier, name), values in paths.items():
        arrays[stored_path_name(carrier, name)] = (("block", "ue", "csi_path"), np.stack(values))
    info = {"timings_s": {"dynamic_path_solver": solver_s,
                          "dynamic_other": time.perf_counter() - started - solver_s},
            "max_dropped_power_share": worst_dropped}
    return arrays, info


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------

def upa_shape(num_antennas: int) -> tuple[int, int]:
    """``(rows, cols)`` of the most nearly square planar array of ``num_antennas`` elements, rows <= cols
    (8 -> 2 x 4, 16 -> 4 x 4, 32 -> 4 x 8, 64 -> 8 x 8, 128 -> 8 x 16; 1 -> 1 x 1, 4 -> 2 x 2)."""
    n = check_positive_int(num_antennas, "num_antennas")
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows


def block_split(num_blocks: int, test_blocks: int, val_blocks: int = 0) -> dict[str, list[int]]:
    """The paper's split by time: the last ``test_blocks`` blocks test, the ``val_blocks`` before them
    validate, the rest train (future blocks are never seen in training)."""
    for name, value, minimum in (("num_blocks", num_blocks, 1), ("test_blocks", test_blocks, 0),
                                 ("val_blocks", val_blocks, 0)):
        if not is_whole_number(value, minimum=minimum):
            raise CkmsimError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    if test_blocks + val_blocks >= num_blocks:
        raise CkmsimError(f"test_blocks + val_blocks must leave a training block of the {num_blocks}. "
                          f"Received: test_blocks={test_blocks}, val_blocks={val_blocks}")
    train_end = num_blocks - test_blocks - val_blocks
    return {"train": list(range(train_end)), "val": list(range(train_end, num_blocks - test_blocks)),
            "test": list(range(num_blocks - test_blocks, num_blocks))}


def dynamic_settings(store):
    """The store's :class:`~ckmsim.data.config.DynamicSettings` and :class:`CsiSettings`; a clear error for
    a store built without ``[dynamic]``."""
    from ckmsim.data.config import DatasetConfig

    config = DatasetConfig.from_dict(store.manifest["config"])
    if config.dynamic is None:
        raise CkmsimError(f"Dataset '{store.path}' has no coherence blocks: it was built without a [dynamic] "
                          f"section")
    return config.dynamic, config.csi


def read_dynamic_csi(store, index: int, num_bs_antennas: int | tuple[int, int],
                     num_ue_antennas: int | tuple[int, int] = 1, blocks=None) -> dict[str, np.ndarray]:
    """The CSI of sample ``index``'s blocks with the given arrays, from its stored paths.

    Input
    -----
    store : DatasetStore built with ``[dynamic]``
    index : sample index
    num_bs_antennas, num_ue_antennas : int (a :func:`upa_shape` array) or (rows, cols)
    blocks : block indices (default: all)

    Output
    ------
    dict with ``h_dl`` ``[block, ue, subcarrier, ue_ant, bs_ant]`` and ``h_ul``
    ``[block, ue, subcarrier, bs_ant, ue_ant]`` (complex64), ``ue_position_m`` ``[block, ue, 3]``,
    ``ue_cell`` ``[block, ue, 2]`` and ``blocks`` ``[block]``
    """
    dynamic, csi = dynamic_settings(store)
    bs = upa_shape(num_bs_antennas) if np.ndim(num_bs_antennas) == 0 else tuple(int(v) for v in num_bs_antennas)
    ue = upa_shape(num_ue_antennas) if np.ndim(num_ue_antennas) == 0 else tuple(int(v) for v in num_ue_antennas)
    arrays_csi = replace(csi, bs_rows=bs[0], bs_cols=bs[1], ue_rows=ue[0], ue_cols=ue[1])
    blocks = list(range(dynamic.num_blocks)) if blocks is None else [int(b) for b in blocks]
    bad = [b for b in blocks if not 0 <= b < dynamic.num_blocks]
    if bad:
        raise CkmsimError(f"blocks {bad} are not among the {dynamic.num_blocks} blocks of '{store.path}'")
    raw = store.sample(index)
    out = {"blocks": np.array(blocks), "ue_position_m": raw["block_ue_position_m"].values[blocks],
           "ue_cell": raw["block_ue_cell"].values[blocks]}
    for carrier in CARRIERS:
        stored = {name: raw[stored_path_name(carrier, name)].values[blocks] for name in STORED_PATH_VARIABLES}
        num_block, num_ue = stored["a"].shape[:2]
        # one path set over all (block, UE) pairs, reshaped back afterwards
        flat = paths_from_arrays({name: values.reshape(num_block * num_ue, -1) for name, values in stored.items()})
        h = carrier_channel(flat, arrays_csi, carrier)
        out[f"h_{carrier}"] = h.reshape((num_block, num_ue) + h.shape[1:])
    return out

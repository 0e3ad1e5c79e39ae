"""Ground truth for one (scene, BS, grid): the true CKM and the true per-UE paths, from one ray trace.

The returned CKM follows the contract of :mod:`ckmsim.maps.ckm`; the path set that of
:mod:`ckmsim.raytrace.paths`, with ``ue_row``/``ue_col`` coordinates tying each UE to its grid cell.
UEs are placed at every non-building cell centre.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import building_mask
from ckmsim.raytrace.gain_map import gain_map_db
from ckmsim.raytrace.paths import trace_paths
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings


def path_layers(paths: xr.Dataset, grid: Grid, num_map_paths: int) -> dict[str, np.ndarray]:
    """Per-path CKM layers (PGM, PAM, ToA) of the ``num_map_paths`` strongest paths of each UE cell.

    Input
    -----
    paths : path set with ``ue_row``/``ue_col`` coordinates
    grid : Grid
    num_map_paths : int

    Output
    ------
    dict with ``path_gain_db``, ``aoa_az_deg``, ``aoa_el_deg``, ``aod_az_deg``, ``aod_el_deg``, ``toa_s``:
    ``[num_map_paths, num_y, num_x]``
    float64 (gain at ``GAIN_FLOOR_DB``, the rest NaN where a cell has fewer paths or no UE), and
    ``los``: ``[num_y, num_x]`` bool, the strongest path is LoS.
    """
    rows = paths["ue_row"].values
    cols = paths["ue_col"].values
    shape = (num_map_paths,) + grid.shape
    # Uplink convention of the CKM: arrival at the BS = the trace's departure, departure at the UE = arrival.
    sources = {"aoa_az_deg": "dep_az_deg", "aoa_el_deg": "dep_el_deg", "aod_az_deg": "arr_az_deg",
               "aod_el_deg": "arr_el_deg", "toa_s": "delay_s"}
    layers = {"path_gain_db": np.full(shape, GAIN_FLOOR_DB), **{name: np.full(shape, np.nan) for name in sources}}
    available = min(num_map_paths, paths.sizes["path"])
    valid = paths["valid"].values[:, :available]
    with np.errstate(divide="ignore"):
        gain_db = np.maximum(10.0 * np.log10(np.abs(paths["a"].values[:, :available]) ** 2), GAIN_FLOOR_DB)
    values_of = {"path_gain_db": gain_db,
                 **{name: paths[source].values[:, :available] for name, source in sources.items()}}
    for name, values in values_of.items():
        fill = GAIN_FLOOR_DB if name == "path_gain_db" else np.nan
        # [num_ue, available] -> [available, num_ue] scattered onto the grid cells of the UEs
        layers[name][:available, rows, cols] = np.where(valid, values, fill).T
    los = np.zeros(grid.shape, dtype=bool)
    los[rows, cols] = paths["los"].values[:, 0]
    layers["los"] = los
    return layers


def trace_ground_truth(scene, scene_name: str, grid: Grid, bs_position_m, settings: RayTracingSettings,
                       num_map_paths: int = 2, progress: bool = True) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Ray-trace the true CKM and the true paths of every non-building cell.

    With ``num_map_paths = 0`` only the RadioMapSolver runs (a *gain-only* CKM): the CKM holds ``gain_db``
    and ``building``, no per-path layer and no ``los`` (which is read off the paths), and no path set is
    returned.

    Input
    -----
    scene : sionna.rt.Scene (modified: its transmitters and receivers are replaced)
    scene_name : str, recorded in the attributes
    grid : Grid
    bs_position_m : (x, y, z) [m]
    settings : RayTracingSettings
    num_map_paths : int
        Paths per cell kept in the CKM's per-path layers (L = 2 as in E-SRResNet); 0 skips the PathSolver.
    progress : bool

    Output
    ------
    ckm : xarray.Dataset, the CKM contract, with solver timings in ``attrs["timings_s"]``
    paths : xarray.Dataset, path set of the non-building cells; None when ``num_map_paths`` is 0
    """
    timings = {}
    place_base_station(scene, bs_position_m, settings)

    start = time.perf_counter()
    building = building_mask(scene, grid)
    timings["building_mask"] = time.perf_counter() - start

    start = time.perf_counter()
    gain_db = np.where(building, np.nan, gain_map_db(scene, grid, settings))
    timings["radio_map_solver"] = time.perf_counter() - start

    rows, cols = np.nonzero(~building)
    attrs = {"scene": scene_name, "frequency_hz": float(settings.frequency_hz),
             "bs_position_m": [float(v) for v in bs_position_m], "ray_tracing": settings.to_dict(),
             "timings_s": timings, "num_ues": int(len(rows))}
    if num_map_paths == 0:
        return make_ckm(grid, {"gain_db": gain_db, "building": building}, attrs), None

    start = time.perf_counter()
    paths = trace_paths(scene, grid.cell_centers_m()[rows, cols], settings, progress=progress)
    timings["path_solver"] = time.perf_counter() - start
    paths = paths.assign_coords(ue_row=("ue", rows), ue_col=("ue", cols))
    paths.attrs.update(scene=scene_name, grid=grid.to_dict())
    ckm = make_ckm(grid, {"gain_db": gain_db, "building": building, **path_layers(paths, grid, num_map_paths)},
                   attrs)
    return ckm, paths

r"""Ground truth for one (scene, BS, grid): the true CKM and the true per-UE paths, from one ray trace.

The returned CKM follows the contract of :mod:`ckmsim.maps.ckm`; the path set that of
:mod:`ckmsim.raytrace.paths`, with ``ue_row``/``ue_col`` coordinates tying each UE to its grid cell.
UEs are placed at every non-building cell centre, ``grid.height_m`` above the cell's local ground
(:func:`ckmsim.scene.geometry.cell_geometry`).

**One gain layer, consistent with the paths.** Where the PathSolver runs, ``gain_db`` is the wideband
(incoherent) power sum of the cell's traced paths, :math:`10 \log_{10} \sum_i |a_i|^2`: the mean over the
band of the channel the link sees at that UE, and the quantity of which ``path_gain_db`` are the terms. A cell
sits at ``GAIN_FLOOR_DB`` only when the PathSolver found no path to it. The RadioMapSolver (a cell-area
average from a different ray sample) runs only for gain-only CKMs (``num_map_paths = 0``), on the UEs' local
ground (:func:`ckmsim.raytrace.gain_map.gain_map_db`). ``attrs["gain_source"]`` says which.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import cell_geometry, fill_from_nearest
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


def path_power_db(paths: xr.Dataset, grid: Grid) -> np.ndarray:
    """Wideband channel gain of every UE cell: the power sum of its valid paths [dB].

    Input
    -----
    paths : path set with ``ue_row``/``ue_col`` coordinates
    grid : Grid

    Output
    ------
    gain_db : [num_y, num_x], float64; ``GAIN_FLOOR_DB`` where a UE has no path, NaN where there is no UE
    """
    # [num_ue, num_paths] -> [num_ue]
    power = np.sum(np.where(paths["valid"].values, np.abs(paths["a"].values.astype(np.complex128)) ** 2, 0.0),
                   axis=1)
    gain = np.full(grid.shape, np.nan)
    with np.errstate(divide="ignore"):
        gain[paths["ue_row"].values, paths["ue_col"].values] = np.maximum(10.0 * np.log10(power), GAIN_FLOOR_DB)
    return gain


def trace_ground_truth(scene, scene_name: str, grid: Grid, bs_position_m, settings: RayTracingSettings,
                       num_map_paths: int = 2, progress: bool = True) -> tuple[xr.Dataset, xr.Dataset | None]:
    """Ray-trace the true CKM and the true paths of every non-building cell.

    ``gain_db`` is the power sum of each cell's paths (see the module docstring). With ``num_map_paths = 0``
    only the RadioMapSolver runs (a *gain-only* CKM): the CKM holds its ``gain_db`` and ``building``, no
    per-path layer and no ``los`` (which is read off the paths), and no path set is returned.

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
    ckm : xarray.Dataset, the CKM contract, with solver timings in ``attrs["timings_s"]``, ``gain_source``
        and the local ground's range ``ground_m_range``
    paths : xarray.Dataset, path set of the non-building cells (``ue_z_m`` on the local ground); None when
        ``num_map_paths`` is 0
    """
    timings = {}
    place_base_station(scene, bs_position_m, settings)

    start = time.perf_counter()
    geometry = cell_geometry(scene, grid)
    building = geometry.building
    timings["building_mask"] = time.perf_counter() - start

    rows, cols = np.nonzero(~building)
    ground = geometry.ground_m[rows, cols]
    attrs = {"scene": scene_name, "frequency_hz": float(settings.frequency_hz),
             "bs_position_m": [float(v) for v in bs_position_m], "ray_tracing": settings.to_dict(),
             "timings_s": timings, "num_ues": int(len(rows)),
             "ground_m_range": [float(ground.min()), float(ground.max())] if len(rows) else []}
    if num_map_paths == 0:
        start = time.perf_counter()
        # Building cells are masked anyway; giving them their open neighbours' ground keeps flat streets flat
        # (the planar map) where building meshes reach below the ground.
        map_ground = fill_from_nearest(geometry.ground_m, ~building, 0.0)
        gain_db = np.where(building, np.nan, gain_map_db(scene, grid, settings, map_ground))
        timings["radio_map_solver"] = time.perf_counter() - start
        attrs["gain_source"] = "radio_map_solver: cell-area average at UE height over the local ground"
        return make_ckm(grid, {"gain_db": gain_db, "building": building, "ground_m": geometry.ground_m}, attrs), None

    start = time.perf_counter()
    # the cells let the default pooled solver share candidate chains between neighbouring cells
    paths = trace_paths(scene, grid.cell_centers_m(geometry.ground_m)[rows, cols], settings, progress=progress,
                        cells=np.stack([rows, cols], axis=1))
    timings["path_solver"] = time.perf_counter() - start
    paths = paths.assign_coords(ue_row=("ue", rows), ue_col=("ue", cols))
    paths.attrs.update(scene=scene_name, grid=grid.to_dict())
    attrs["gain_source"] = "path_solver: power sum of the cell's paths at the UE"
    gain_db = path_power_db(paths, grid)
    ckm = make_ckm(grid, {"gain_db": gain_db, "building": building, "ground_m": geometry.ground_m,
                          **path_layers(paths, grid, num_map_paths)}, attrs)
    return ckm, paths

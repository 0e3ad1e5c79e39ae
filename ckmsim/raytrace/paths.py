"""Per-UE path lists with Sionna RT's PathSolver: the true channels behind every link score.

A *path set* is an ``xarray.Dataset`` with dims ``ue`` and ``path`` (paths of a UE sorted by power,
strongest first; slots beyond a UE's path count are invalid):

================ ============ ========= ====================================================
variable         dims         dtype     meaning
================ ============ ========= ====================================================
``a``            (ue, path)   complex64 baseband gain between isotropic antennas, with the
                                        carrier phase exp(-j 2 pi f_c tau) (Sionna's ``Paths.cir``) [1]
``delay_s``      (ue, path)   float32   propagation delay [s]
``dep_az_deg``   (ue, path)   float32   azimuth of departure at the BS [deg]
``dep_el_deg``   (ue, path)   float32   elevation of departure at the BS [deg]
``arr_az_deg``   (ue, path)   float32   azimuth of arrival at the UE [deg]
``arr_el_deg``   (ue, path)   float32   elevation of arrival at the UE [deg]
``los``          (ue, path)   bool      the path has no interaction (line of sight)
``valid``        (ue, path)   bool      the slot holds a path
================ ============ ========= ====================================================

Coordinates ``ue_x_m``, ``ue_y_m``, ``ue_z_m`` give the UE positions; attrs hold the frequency, the BS
position and the ray-tracing settings. By reciprocity the departure angles at the BS are the uplink arrival
angles the CKM stores as ``aoa_*``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ckmsim.maps.angles import sionna_to_az_el_deg
from ckmsim.raytrace.settings import RayTracingSettings

#: Variables of a path set, in the order of the table above.
PATH_VARIABLES = ("a", "delay_s", "dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg", "los", "valid")


def _solve_chunk(scene, solver, receivers, positions_m: np.ndarray, settings: RayTracingSettings) -> dict:
    """Trace one fixed-size batch of receivers; return numpy arrays ``[num_receivers, num_paths]``."""
    import mitsuba as mi

    for receiver, (x, y, z) in zip(receivers, positions_m):
        receiver.position = mi.Point3f(float(x), float(y), float(z))
    paths = solver(scene, max_depth=int(settings.max_depth), samples_per_src=int(settings.path_samples),
                   max_num_paths_per_src=int(settings.max_num_paths_per_src), synthetic_array=True,
                   diffraction=settings.diffraction, edge_diffraction=settings.edge_diffraction,
                   seed=int(settings.seed))
    # Paths.a lacks the carrier phase exp(-j 2 pi f_c tau); cir() adds it, and without it the paths of a
    # UE would add up with wrong relative phases. Absolute delays keep it consistent with ``delay_s``.
    a_baseband, _ = paths.cir(normalize_delays=False, out_type="numpy")
    # [num_rx, num_rx_ant, num_tx, num_tx_ant, num_paths, num_time_steps] -> [num_rx, num_paths]
    a = np.asarray(a_baseband)[:, 0, 0, 0, :, 0]
    # [num_rx, num_tx, num_paths] -> [num_rx, num_paths]
    valid = np.array(paths.valid.numpy(), dtype=bool)[:, 0, :]
    tau = np.array(paths.tau.numpy())[:, 0, :]
    az_deg, el_deg = sionna_to_az_el_deg(np.array(paths.theta_t.numpy())[:, 0, :],
                                         np.array(paths.phi_t.numpy())[:, 0, :])
    arr_az_deg, arr_el_deg = sionna_to_az_el_deg(np.array(paths.theta_r.numpy())[:, 0, :],
                                                 np.array(paths.phi_r.numpy())[:, 0, :])
    # [max_depth, num_rx, num_tx, num_paths] -> [num_rx, num_paths]; a LoS path has no interaction at all
    interactions = np.array(paths.interactions.numpy())
    los = valid & np.all(interactions[:, :, 0, :] == 0, axis=0) if interactions.size else valid.copy()
    return {"a": np.where(valid, a, 0.0), "delay_s": tau, "dep_az_deg": az_deg, "dep_el_deg": el_deg,
            "arr_az_deg": arr_az_deg, "arr_el_deg": arr_el_deg, "los": los, "valid": valid}


def _sort_by_power(chunk: dict) -> dict:
    """Reorder each receiver's paths strongest first, invalid slots last."""
    power = np.where(chunk["valid"], np.abs(chunk["a"]) ** 2, -1.0)
    order = np.argsort(-power, axis=1, kind="stable")
    return {name: np.take_along_axis(values, order, axis=1) for name, values in chunk.items()}


def _pad_paths(chunk: dict, num_paths: int) -> dict:
    """Pad or truncate the path axis to ``num_paths`` slots (padding is invalid, NaN angles/delays)."""
    out = {}
    for name, values in chunk.items():
        width = values.shape[1]
        if width >= num_paths:
            out[name] = values[:, :num_paths]
            continue
        fill = False if values.dtype == bool else (0.0 if np.iscomplexobj(values) else np.nan)
        pad = np.full((values.shape[0], num_paths - width), fill, dtype=values.dtype)
        out[name] = np.concatenate([values, pad], axis=1)
    return out


def trace_paths(scene, positions_m: np.ndarray, settings: RayTracingSettings, progress: bool = True) -> xr.Dataset:
    """All paths from the scene's single transmitter to every UE position.

    UEs are traced in batches of ``settings.receivers_per_call`` (the last batch padded with copies of its
    last UE, whose results are discarded) so that Dr.Jit compiles its kernels once.

    Input
    -----
    scene : sionna.rt.Scene with one transmitter (see :func:`ckmsim.raytrace.scene_setup.place_base_station`)
    positions_m : [num_ue, 3], float
    settings : RayTracingSettings
    progress : bool
        Show a progress bar over batches.

    Output
    ------
    path set : xarray.Dataset (see module docstring)
    """
    import sionna.rt as rt

    positions_m = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    batch = int(settings.receivers_per_call)
    receivers = []
    for index in range(batch):
        receiver = rt.Receiver(f"ckmsim-ue-{index}", position=[0.0, 0.0, 0.0])
        scene.add(receiver)
        receivers.append(receiver)
    solver = rt.PathSolver()
    chunks = []
    try:
        starts = range(0, len(positions_m), batch)
        for start in tqdm(starts, desc="PathSolver", unit="batch", disable=not progress):
            part = positions_m[start:start + batch]
            padded = np.concatenate([part, np.repeat(part[-1:], batch - len(part), axis=0)])
            chunk = _sort_by_power(_solve_chunk(scene, solver, receivers, padded, settings))
            chunks.append({name: values[:len(part)] for name, values in chunk.items()})
    finally:
        for receiver in receivers:
            scene.remove(receiver.name)
    num_paths = max(1, max((int(c["valid"].sum(axis=1).max(initial=0)) for c in chunks), default=1))
    chunks = [_pad_paths(c, num_paths) for c in chunks]
    merged = {name: np.concatenate([c[name] for c in chunks]) if chunks else np.zeros((0, num_paths))
              for name in PATH_VARIABLES}
    return _make_path_set(merged, positions_m, scene, settings)


def _make_path_set(arrays: dict, positions_m: np.ndarray, scene, settings: RayTracingSettings) -> xr.Dataset:
    """Wrap merged numpy arrays ``[num_ue, num_paths]`` into the path-set Dataset."""
    valid = arrays["valid"].astype(bool)
    dims = ("ue", "path")
    data = {
        "a": (dims, np.where(valid, arrays["a"], 0.0).astype(np.complex64)),
        "delay_s": (dims, np.where(valid, arrays["delay_s"], np.nan).astype(np.float32)),
        "dep_az_deg": (dims, np.where(valid, arrays["dep_az_deg"], np.nan).astype(np.float32)),
        "dep_el_deg": (dims, np.where(valid, arrays["dep_el_deg"], np.nan).astype(np.float32)),
        "arr_az_deg": (dims, np.where(valid, arrays["arr_az_deg"], np.nan).astype(np.float32)),
        "arr_el_deg": (dims, np.where(valid, arrays["arr_el_deg"], np.nan).astype(np.float32)),
        "los": (dims, arrays["los"].astype(bool) & valid),
        "valid": (dims, valid),
    }
    coords = {"ue_x_m": ("ue", positions_m[:, 0]), "ue_y_m": ("ue", positions_m[:, 1]),
              "ue_z_m": ("ue", positions_m[:, 2])}
    bs = next(iter(scene.transmitters.values()))
    bs_position = [float(v) for v in np.array(bs.position, dtype=np.float64).ravel()]
    attrs = {"frequency_hz": float(settings.frequency_hz), "bs_position_m": bs_position,
             "ray_tracing": settings.to_dict()}
    return xr.Dataset(data, coords=coords, attrs=attrs)

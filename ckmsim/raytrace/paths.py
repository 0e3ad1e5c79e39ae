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

and, where the tracer provides them, ``interaction_types`` (ue, path, depth) uint8: Sionna RT's
``InteractionType`` of each interaction (0 none, 1 specular, 2 diffuse, 4 refraction, 8 diffraction), what
tells a reflection at an edge point from the diffraction there (:func:`count_duplicate_paths`).

Coordinates ``ue_x_m``, ``ue_y_m``, ``ue_z_m`` give the UE positions; attrs hold the frequency, the BS
position, the ray-tracing settings and ``num_duplicate_paths_removed`` (copies dropped by
:func:`deduplicate_paths`). By reciprocity the departure angles at the BS are the uplink arrival angles the
CKM stores as ``aoa_*``.

Every path appears once. Sionna RT 1.2.2's PathSolver returns some paths twice: its shoot-and-bounce stage
keeps a candidate interaction chain only if the chain's hash is new, but it hashes a reflecting *plane* through
its quantised normal (1e-5) and offset (1 mm) and a diffracting *edge* through its two end points
(``SBCandidateGenerator``, ``utils/hashing.py``). An edge point that two wedges with different end points both
cover (a mesh edge spanning two shorter edges of its neighbours), or a wall of nearly coplanar triangles, thus
yields two chains with different hashes, and the image method refines both to the same physical path (its
backtracking even accepts a reflection off any triangle whose image lies within 1 cm of the expected one).
On munich nearly all copies are diffractions at one edge point through two wedges of the same mesh (other
primitive, delay equal to 0.23 ps, directions to 0.05 deg); their powers differ (median 0.5 dB) since the
wedges' faces differ. :func:`deduplicate_paths` keeps one copy of each, the strongest.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ckmsim.maps.angles import sionna_to_az_el_deg
from ckmsim.raytrace.settings import RayTracingSettings

#: Variables of a path set, in the order of the table above.
PATH_VARIABLES = ("a", "delay_s", "dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg", "los", "valid")

#: Optional key of a chunk: the interaction type of each path's interactions, ``[num_rx, num_paths, max_depth]``
#: uint (Sionna RT's ``InteractionType``; 0 = none). Used by :func:`deduplicate_paths` where present.
INTERACTION_TYPES = "interaction_types"

# What "the same path" means, measured on 256 open cells of munich (64x64 cells of 2 m around (8.5, 21) m, BS
# at 27 m, 1e5 rays, depth 3, diffraction on; 22,505 paths): of the 247,430 pairs of paths of one UE with the
# same interaction types, 2,180 have delays within 1 ps, and all but 2 of those have directions within
# 0.05 deg at both ends (99.9 % within 0.01 deg; delays within 0.23 ps); no pair with directions 0.05-0.1 deg
# apart exists at any delay, and distinct paths sit > 0.1 deg apart. Nearly all copies are diffractions on the
# same edge point through two different wedges (same object, other primitive), whose powers differ by a median
# 0.5 dB (p99 1.6 dB) because the wedges' faces differ.
#: Two paths of one UE are one path when their delays differ by at most this [s] ...
DUPLICATE_DELAY_TOL_S = 1e-12
#: ... and their departure and arrival directions by at most this [deg].
DUPLICATE_ANGLE_TOL_DEG = 0.05


@contextmanager
def _candidate_generator_attribute(name: str, value):
    """Set the class attribute ``name`` of Sionna RT 1.2.2's ``SBCandidateGenerator`` (read while tracing)
    for the duration of a ``with`` block; the previous value is restored on exit, also after an error."""
    from sionna.rt.path_solvers.sb_candidate_generator import SBCandidateGenerator

    previous = getattr(SBCandidateGenerator, name)
    setattr(SBCandidateGenerator, name, value)
    try:
        yield
    finally:
        setattr(SBCandidateGenerator, name, previous)


def diffraction_sampling(probability: float):
    """Set Sionna RT's diffraction sampling probability (``SBCandidateGenerator.DIFFRACTION_SAMPLING_PROBABILITY``)
    for the duration of a ``with`` block."""
    return _candidate_generator_attribute("DIFFRACTION_SAMPLING_PROBABILITY", float(probability))


def candidate_hash_slots(slots: int):
    """Size Sionna RT's table of seen candidate chains for the duration of a ``with`` block.

    Sionna RT 1.2.2 keeps a candidate chain only if its hash slot (``hash % size``, in each of two tables of
    ``max(max_num_paths_per_src, SBCandidateGenerator.MIN_SPEC_COUNT_SIZE)`` slots per source) is still empty,
    so a new chain whose slot another chain took is silently lost. See ``RayTracingSettings.candidate_hash_slots``.
    """
    return _candidate_generator_attribute("MIN_SPEC_COUNT_SIZE", int(slots))


@contextmanager
def solver_sampling(settings: RayTracingSettings):
    """Both Sionna RT class-level knobs of ``settings`` (diffraction sampling probability, candidate hash
    slots) for the duration of a ``with`` block; use it around any PathSolver or candidate-generator call."""
    with diffraction_sampling(settings.diffraction_sampling_probability), \
            candidate_hash_slots(settings.candidate_hash_slots):
        yield


def _solve_chunk(scene, solver, receivers, positions_m: np.ndarray, settings: RayTracingSettings) -> dict:
    """Trace one fixed-size batch of receivers; return numpy arrays ``[num_receivers, num_paths]``."""
    import mitsuba as mi

    for receiver, (x, y, z) in zip(receivers, positions_m):
        receiver.position = mi.Point3f(float(x), float(y), float(z))
    with solver_sampling(settings):
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
    # [max_depth, num_rx, num_paths] -> [num_rx, num_paths, max_depth]
    types = np.transpose(interactions[:, :, 0, :], (1, 2, 0)) if interactions.size else \
        np.zeros(valid.shape + (0,), dtype=np.uint32)
    return {"a": np.where(valid, a, 0.0), "delay_s": tau, "dep_az_deg": az_deg, "dep_el_deg": el_deg,
            "arr_az_deg": arr_az_deg, "arr_el_deg": arr_el_deg, "los": los, "valid": valid,
            INTERACTION_TYPES: types}


def _angle_between_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle between unit vectors ``[..., 3]`` [deg]; 2 asin(|u - v| / 2) stays exact for tiny angles."""
    chord = np.linalg.norm(u - v, axis=-1)
    return np.degrees(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)))


def duplicate_pairs(delay_s: np.ndarray, dep_u: np.ndarray, arr_u: np.ndarray, types: np.ndarray | None,
                    delay_tol_s: float, angle_tol_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, of paths of one UE that are the same path.

    Input
    -----
    delay_s : [n], float. Delays [s].
    dep_u, arr_u : [n, 3], float. Unit departure / arrival directions.
    types : [n, max_depth] int or None. Interaction types; pairs must agree on all of them.
    delay_tol_s, angle_tol_deg : float

    Output
    ------
    i, j : [num_pairs], int
    """
    order = np.argsort(delay_s, kind="stable")
    sorted_delay = delay_s[order]
    firsts, seconds = [], []
    # Only neighbours in delay can match: walk offsets until no pair is within the delay tolerance.
    for offset in range(1, len(order)):
        close = np.flatnonzero(sorted_delay[offset:] - sorted_delay[:-offset] <= delay_tol_s)
        if close.size == 0:
            break
        firsts.append(order[close])
        seconds.append(order[close + offset])
    if not firsts:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    i = np.concatenate(firsts)
    j = np.concatenate(seconds)
    same = (_angle_between_deg(dep_u[i], dep_u[j]) <= angle_tol_deg) & \
        (_angle_between_deg(arr_u[i], arr_u[j]) <= angle_tol_deg)
    if types is not None and types.shape[-1]:
        same &= np.all(types[i] == types[j], axis=-1)
    i, j = i[same], j[same]
    return np.minimum(i, j), np.maximum(i, j)


def deduplicate_paths(chunk: dict, delay_tol_s: float = DUPLICATE_DELAY_TOL_S,
                      angle_tol_deg: float = DUPLICATE_ANGLE_TOL_DEG) -> dict:
    """Mark every second copy of a path invalid, keeping the strongest copy.

    Two valid paths of one receiver are the same path when their delays differ by at most ``delay_tol_s``,
    their departure and their arrival directions each by at most ``angle_tol_deg`` and, where the chunk
    carries :data:`INTERACTION_TYPES`, their interaction types agree. A copy is the same physical path found
    twice (see the module docstring), so its power is dropped, not added. Copies are taken greedily strongest
    first: a path is dropped when it is the same path as a stronger path that was kept.

    Input
    -----
    chunk : dict of ``[num_rx, num_paths]`` numpy arrays with the keys :data:`PATH_VARIABLES` (angles [deg],
        delays [s]; invalid slots may hold anything) and optionally :data:`INTERACTION_TYPES`
        ``[num_rx, num_paths, max_depth]``.
    delay_tol_s : float. Delay tolerance [s].
    angle_tol_deg : float. Direction tolerance [deg], at both ends.

    Output
    ------
    chunk : dict, the same keys and shapes; copies have ``valid`` False, ``a`` 0 and ``los`` False.
    """
    from ckmsim.maps.angles import unit_vectors

    valid = np.asarray(chunk["valid"], dtype=bool)
    keep = valid.copy()
    types = chunk.get(INTERACTION_TYPES)
    power = np.abs(chunk["a"]) ** 2
    for rx in np.flatnonzero(valid.sum(axis=1) > 1):
        index = np.flatnonzero(valid[rx])
        dep_u = unit_vectors(chunk["dep_az_deg"][rx, index], chunk["dep_el_deg"][rx, index])
        arr_u = unit_vectors(chunk["arr_az_deg"][rx, index], chunk["arr_el_deg"][rx, index])
        i, j = duplicate_pairs(np.asarray(chunk["delay_s"][rx, index], dtype=np.float64), dep_u, arr_u,
                               None if types is None else types[rx, index], delay_tol_s, angle_tol_deg)
        if i.size == 0:
            continue
        # rank 0 = strongest; ties keep the earlier slot
        rank = np.empty(len(index), dtype=int)
        rank[np.argsort(-power[rx, index], kind="stable")] = np.arange(len(index))
        stronger = np.where(rank[i] < rank[j], i, j)
        weaker = np.where(rank[i] < rank[j], j, i)
        dropped = np.zeros(len(index), dtype=bool)
        for s_, w_ in sorted(zip(stronger, weaker), key=lambda pair: rank[pair[0]]):
            if not dropped[s_]:
                dropped[w_] = True
        keep[rx, index[dropped]] = False
    out = dict(chunk)
    out["valid"] = keep
    out["a"] = np.where(keep, chunk["a"], 0.0)
    out["los"] = np.asarray(chunk["los"], dtype=bool) & keep
    return out


def count_duplicate_paths(path_set: xr.Dataset, delay_tol_s: float = DUPLICATE_DELAY_TOL_S,
                          angle_tol_deg: float = DUPLICATE_ANGLE_TOL_DEG) -> np.ndarray:
    """Number of paths of each UE that are a copy of another of its paths ``[num_ue]`` int (0 = clean).

    The check the dataset builder runs on every traced set. Interaction types are compared where the path set
    carries ``interaction_types``; without them a reflection at an edge point and the diffraction there (the
    same delay and directions) count as copies.
    """
    arrays = path_set_arrays(path_set)
    cleaned = deduplicate_paths(arrays, delay_tol_s, angle_tol_deg)
    return (arrays["valid"].sum(axis=1) - cleaned["valid"].sum(axis=1)).astype(int)


def path_set_arrays(path_set: xr.Dataset) -> dict:
    """The numpy dict ``[num_ue, num_paths]`` (keys :data:`PATH_VARIABLES`, and :data:`INTERACTION_TYPES`
    ``[num_ue, num_paths, depth]`` where the set has them) of a path set."""
    names = PATH_VARIABLES + ((INTERACTION_TYPES,) if INTERACTION_TYPES in path_set else ())
    return {name: np.asarray(path_set[name].values) for name in names}


def _sort_by_power(chunk: dict) -> dict:
    """Reorder each receiver's paths strongest first, invalid slots last (any key ``[num_rx, num_paths, ...]``)."""
    power = np.where(chunk["valid"], np.abs(chunk["a"]) ** 2, -1.0)
    order = np.argsort(-power, axis=1, kind="stable")
    return {name: np.take_along_axis(values, order.reshape(order.shape + (1,) * (values.ndim - 2)), axis=1)
            for name, values in chunk.items()}


def _pad_paths(chunk: dict, num_paths: int) -> dict:
    """Pad or truncate the path axis to ``num_paths`` slots (padding is invalid, NaN angles/delays)."""
    out = {}
    for name, values in chunk.items():
        width = values.shape[1]
        if width >= num_paths:
            out[name] = values[:, :num_paths]
            continue
        fill = False if values.dtype == bool else (0 if values.dtype.kind in "iu" else
                                                   (0.0 if np.iscomplexobj(values) else np.nan))
        pad = np.full((values.shape[0], num_paths - width) + values.shape[2:], fill, dtype=values.dtype)
        out[name] = np.concatenate([values, pad], axis=1)
    return out


def trace_paths(scene, positions_m: np.ndarray, settings: RayTracingSettings, progress: bool = True,
                cells: np.ndarray | None = None) -> xr.Dataset:
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
    cells : [num_ue, 2] int or None
        ``(row, col)`` grid cell of each UE. With ``settings.path_solver == "pooled"`` and cells given, the
        paths come from :func:`ckmsim.raytrace.pooling.trace_pooled`; without cells, from the standard solver.

    Output
    ------
    path set : xarray.Dataset (see module docstring)
    """
    import sionna.rt as rt

    positions_m = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    if settings.path_solver == "pooled" and cells is not None:
        from ckmsim.raytrace.pooling import trace_pooled

        stats = {}
        merged = trace_pooled(scene, positions_m, cells, settings, progress=progress, stats=stats)
        path_set = _make_path_set(merged, positions_m, scene, settings)
        path_set.attrs["num_duplicate_paths_removed"] = stats["num_duplicate_paths_removed"]
        return path_set
    batch = int(settings.receivers_per_call)
    receivers = []
    for index in range(batch):
        receiver = rt.Receiver(f"ckmsim-ue-{index}", position=[0.0, 0.0, 0.0])
        scene.add(receiver)
        receivers.append(receiver)
    solver = rt.PathSolver()
    chunks = []
    removed = 0
    try:
        starts = range(0, len(positions_m), batch)
        for start in tqdm(starts, desc="PathSolver", unit="batch", disable=not progress):
            part = positions_m[start:start + batch]
            padded = np.concatenate([part, np.repeat(part[-1:], batch - len(part), axis=0)])
            raw = {name: values[:len(part)] for name, values in
                   _solve_chunk(scene, solver, receivers, padded, settings).items()}
            chunk = deduplicate_paths(raw)
            removed += int(raw["valid"].sum() - chunk["valid"].sum())
            chunks.append(_sort_by_power(chunk))
    finally:
        for receiver in receivers:
            scene.remove(receiver.name)
    num_paths = max(1, max((int(c["valid"].sum(axis=1).max(initial=0)) for c in chunks), default=1))
    chunks = [_pad_paths(c, num_paths) for c in chunks]
    names = PATH_VARIABLES + ((INTERACTION_TYPES,) if chunks and INTERACTION_TYPES in chunks[0] else ())
    merged = {name: np.concatenate([c[name] for c in chunks]) if chunks else np.zeros((0, num_paths))
              for name in names}
    path_set = _make_path_set(merged, positions_m, scene, settings)
    path_set.attrs["num_duplicate_paths_removed"] = removed
    return path_set


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
    if INTERACTION_TYPES in arrays:
        data[INTERACTION_TYPES] = (dims + ("depth",),
                                   np.where(valid[..., None], arrays[INTERACTION_TYPES], 0).astype(np.uint8))
    coords = {"ue_x_m": ("ue", positions_m[:, 0]), "ue_y_m": ("ue", positions_m[:, 1]),
              "ue_z_m": ("ue", positions_m[:, 2])}
    bs = next(iter(scene.transmitters.values()))
    bs_position = [float(v) for v in np.array(bs.position, dtype=np.float64).ravel()]
    attrs = {"frequency_hz": float(settings.frequency_hz), "bs_position_m": bs_position,
             "ray_tracing": settings.to_dict()}
    return xr.Dataset(data, coords=coords, attrs=attrs)

"""Candidate pooling: Sionna RT's PathSolver with shoot-and-bounce for a few *probe* cells only.

A PathSolver call has three stages (``sionna/rt/path_solvers/path_solver.py``):

1. the shoot-and-bounce candidate generator (``SBCandidateGenerator``) launches ``path_samples`` rays from
   the BS and, for every target, records each *candidate interaction chain* (a sequence of reflections,
   refractions and at most one diffraction, identified by the intersected shapes, primitives and
   wedge) seen from that target. Its cost grows as rays x targets x depth and it is 95 % of a call;
2. the image method (``ImageMethod``) turns a candidate into the exact path of its target, or discards it
   (occluded, reflection point off the primitive, diffraction point off the edge);
3. the field calculator (``FieldCalculator``) computes the path's coefficient and delay.

Neighbouring cells of a grid see almost the same chains. Pooling runs stage 1 for one probe cell per
``pool_stride x pool_stride`` block and hands every distinct chain found for a probe to stages 2-3 for each
UE cell within ``pool_radius`` cells of it (and for every cell of the probe's own block, so that no cell
is left without candidates). Stages 2-3 are exact for whatever cell they are given, so a pooled path is a
true path of its cell, not an approximation; what pooling changes is only *which* chains are tried.
The LoS path is tested for every cell. A chain reached through several probes yields the same path
several times; :func:`ckmsim.raytrace.paths.deduplicate_paths` keeps one.

Shoot-and-bounce draws its random choices per ray, whatever the targets, so probes traced together see the
same ray paths; neighbouring probes are therefore traced with different seeds (``pool_seeds``,
:func:`probe_seed_groups`) and a cell pools independent samplings. On munich the strongest path of a cell is
often a diffraction off a short edge that few rays hit, and which seed samples it there decides the
strongest path: this diversity is worth more than the extra chains of the neighbours' positions.

With ``pool_stride = 1``, ``pool_radius = 0`` and ``pool_seeds = 1`` every cell is its own probe and the
result is the standard solver's (same seed, same rays), less its duplicates.

This module drives Sionna RT's internal classes (``PathsBuffer`` fields, the three stages called one by one)
and is therefore pinned to sionna-rt |SIONNA_RT_VERSION|: :func:`check_sionna_rt_version`.
"""

from __future__ import annotations

import time
import warnings
from importlib import metadata

import numpy as np
from tqdm.auto import tqdm

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import sionna_to_az_el_deg
from ckmsim.raytrace.settings import RayTracingSettings

#: The one sionna-rt release whose PathSolver internals this module was written against.
SIONNA_RT_VERSION = "1.2.2"

#: Candidate (chain, UE) pairs validated per image-method call: bounds the memory of one call
#: (about 0.5 kB per pair at depth 3 with diffraction, temporaries included).
MAX_PAIRS_PER_CALL = 2_000_000


def check_sionna_rt_version(installed: str | None = None) -> None:
    """Fail unless the installed sionna-rt is the release this module was written against.

    Input
    -----
    installed : str or None
        Version to check; None reads the installed ``sionna-rt`` distribution.
    """
    if installed is None:
        try:
            installed = metadata.version("sionna-rt")
        except metadata.PackageNotFoundError:
            installed = "not installed"
    if installed != SIONNA_RT_VERSION:
        raise CkmsimError(
            f"path_solver='pooled' drives Sionna RT's PathSolver internals and needs sionna-rt=={SIONNA_RT_VERSION}. "
            f"Received: sionna-rt {installed}. Use RayTracingSettings(path_solver='standard') with this release.")


# ----------------------------------------------------------------------------------------------------------
# Probes and neighbourhoods (pure numpy)
# ----------------------------------------------------------------------------------------------------------

def plan_probes(cells: np.ndarray, stride: int, radius: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Choose the probe cells and the UEs that receive each probe's candidate chains.

    The grid is cut into ``stride x stride`` blocks aligned with row/column 0; the probe of a block is its
    UE cell nearest the block centre (ties: the lower UE index). A probe's *neighbours* are the UE cells
    within Chebyshev distance ``radius`` of it plus every UE cell of its own block, so each UE gets the
    chains of at least one probe even where buildings push a probe off its block's centre.

    Input
    -----
    cells : [num_ue, 2], int
        ``(row, col)`` grid cell of each UE; cells must be distinct.
    stride : int >= 1
    radius : int >= 0

    Output
    ------
    probes : [num_probes], int64
        UE indices of the probes, ascending.
    neighbours : list of num_probes arrays [num_neighbours_p], int64
        UE indices (ascending) re-validated with probe p's chains; each includes the probe itself.
    """
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    num_ue = len(cells)
    if num_ue == 0:
        return np.zeros(0, dtype=np.int64), []
    if len(np.unique(cells, axis=0)) != num_ue:
        raise CkmsimError("Pooled path tracing needs one UE per grid cell. Received: repeated (row, col) cells")
    rows, cols = cells[:, 0], cells[:, 1]
    ue = np.arange(num_ue)
    # [num_ue] block coordinates and a single block id
    block_r, block_c = rows // stride, cols // stride
    block_id = (block_r - block_r.min()) * (block_c.max() - block_c.min() + 1) + (block_c - block_c.min())
    centre_offset = (stride - 1) / 2.0
    dist2 = (rows - block_r * stride - centre_offset) ** 2 + (cols - block_c * stride - centre_offset) ** 2
    order = np.lexsort((ue, dist2, block_id))
    first_in_block = np.ones(num_ue, dtype=bool)
    first_in_block[1:] = block_id[order][1:] != block_id[order][:-1]
    probes = np.sort(order[first_in_block])

    # Dense lookup (row, col) -> UE index, -1 where no UE, padded by `radius` so windows never clip.
    r0, c0 = rows.min() - radius, cols.min() - radius
    lookup = np.full((rows.max() - r0 + radius + 1, cols.max() - c0 + radius + 1), -1, dtype=np.int64)
    lookup[rows - r0, cols - c0] = ue
    members = {int(b): ue[block_id == b] for b in np.unique(block_id[probes])}
    neighbours = []
    for p in probes:
        r, c = rows[p] - r0, cols[p] - c0
        window = lookup[r - radius:r + radius + 1, c - radius:c + radius + 1].ravel()
        neighbours.append(np.union1d(window[window >= 0], members[int(block_id[p])]))
    return probes, neighbours


def probe_seed_groups(probe_cells: np.ndarray, stride: int, num_groups: int) -> np.ndarray:
    """Seed group of each probe, so that the probes a UE pools from trace with different seeds.

    Shoot-and-bounce draws its random choices (which interaction a ray takes, where on an edge it diffracts)
    per ray, whatever the targets, so probes traced in one call see the same ray paths. Probes of different
    groups are traced with different seeds (``seed + group``): a UE pooling from the ~3 probes around it then
    sees ~3 independent samplings for the cost of one. Groups follow the blocks: 1: one group; 2: a
    checkerboard; 4: a 2 x 2 pattern (the four blocks around any block corner differ).

    Input
    -----
    probe_cells : [num_probes, 2], int
        ``(row, col)`` of the probes.
    stride : int >= 1
    num_groups : 1, 2 or 4

    Output
    ------
    group : [num_probes], int64 in [0, num_groups)
    """
    block = np.asarray(probe_cells, dtype=np.int64).reshape(-1, 2) // stride
    if num_groups == 1:
        return np.zeros(len(block), dtype=np.int64)
    if num_groups == 2:
        return (block[:, 0] + block[:, 1]) % 2
    if num_groups == 4:
        return 2 * (block[:, 0] % 2) + block[:, 1] % 2
    raise CkmsimError(f"The number of probe seed groups must be 1, 2 or 4. Received: pool_seeds={num_groups!r}")


def _distinct_pairs(candidate_probe: np.ndarray, chain_key: np.ndarray, neighbours: list[np.ndarray],
                    num_ue: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (chain, UE) pair to validate, once: each distinct chain with each neighbour of a probe that found it.

    The image method's answer depends on the chain, not on the probe that found it (a reflection is off the
    primitive's plane, a diffraction off the wedge's edge), so a chain reached through several probes is
    validated once per UE.

    Input
    -----
    candidate_probe : [num_candidates], int
        Local probe index (into ``neighbours``) of each candidate.
    chain_key : [num_candidates, k], int64
        Identity of each candidate's chain (see :func:`_chain_keys`).
    neighbours : list of [num_neighbours_p] int arrays, one per local probe
    num_ue : int

    Output
    ------
    candidate : [num_pairs], int64
        A representative candidate (index into the inputs) of each pair's chain.
    ue : [num_pairs], int64
        The UE the chain is validated for.
    """
    if len(candidate_probe) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Exact row identity: view each key row as one opaque item.
    rows = np.ascontiguousarray(chain_key).view(np.dtype((np.void, chain_key.dtype.itemsize * chain_key.shape[1])))
    _, representative, chain_id = np.unique(rows.ravel(), return_index=True, return_inverse=True)
    chain_id = chain_id.reshape(-1).astype(np.int64)
    by_probe = np.argsort(candidate_probe, kind="stable")
    starts = np.concatenate([[0], np.cumsum(np.bincount(candidate_probe, minlength=len(neighbours)))])
    keys = []
    for p, nbrs in enumerate(neighbours):
        chains = np.unique(chain_id[by_probe[starts[p]:starts[p + 1]]])
        # [num_chains_p, num_neighbours_p] -> flat (chain, UE) keys
        keys.append((chains[:, None] * num_ue + np.asarray(nbrs, dtype=np.int64)[None]).ravel())
    keys = np.unique(np.concatenate(keys))
    return representative[keys // num_ue].astype(np.int64), keys % num_ue


# ----------------------------------------------------------------------------------------------------------
# Sionna RT stages
# ----------------------------------------------------------------------------------------------------------

def _points(positions_m: np.ndarray):
    """``[n, 3]`` numpy -> opaque ``mi.Point3f`` of width n."""
    import drjit as dr
    import mitsuba as mi

    points = mi.Point3f(*(mi.Float(np.ascontiguousarray(positions_m[:, i], dtype=np.float32)) for i in range(3)))
    dr.make_opaque(points)
    return points


def _zeros_points(n: int):
    import drjit as dr
    import mitsuba as mi

    points = mi.Point3f(dr.zeros(mi.Float, n), dr.zeros(mi.Float, n), dr.zeros(mi.Float, n))
    dr.make_opaque(points)
    return points


class _Stages:
    """Sionna RT's three PathSolver stages bound to one scene, BS and setting, as the standard call uses them.

    Flags mirror ``ckmsim.raytrace.paths._solve_chunk``: LoS, specular reflection and refraction on
    (PathSolver's defaults), diffuse reflection off, diffraction as in the settings, lit-region
    diffraction on, synthetic arrays (one source at the BS position, targets at the UE positions).
    """

    def __init__(self, scene, positions_m: np.ndarray, settings: RayTracingSettings):
        import sionna.rt as rt

        if len(scene.transmitters) != 1 or scene.tx_array is None or scene.rx_array is None:
            raise CkmsimError("Pooled path tracing needs a scene with exactly one transmitter and tx/rx arrays set "
                              "(see ckmsim.raytrace.scene_setup.place_base_station). Received: "
                              f"{len(scene.transmitters)} transmitter(s)")
        solver = rt.PathSolver()
        self.generator = solver._candidate_generator
        self.image_method = solver._image_method
        self.field_calculator = solver._field_calculator
        self.scene = scene
        self.settings = settings
        self.src_positions, self.src_orientations, _, _ = scene.sources(True, True)
        self.src_patterns = scene.tx_array.antenna_pattern.patterns
        self.tgt_patterns = scene.rx_array.antenna_pattern.patterns
        # [num_ue] targets (receivers keep Sionna's default orientation (0, 0, 0))
        self.tgt_positions = _points(positions_m)
        self.tgt_orientations = _zeros_points(len(positions_m))
        self.frequency_hz = float(np.array(scene.frequency, dtype=np.float64).ravel()[0])

    def shoot_and_bounce(self, probe_positions_m: np.ndarray, seed: int):
        """Stage 1 for the probes alone, LoS off (LoS is tested for every UE apart). Candidates only."""
        import drjit as dr

        from ckmsim.raytrace.paths import solver_sampling

        s = self.settings
        # the same class-level knobs as the standard solver (diffraction sampling, candidate hash slots)
        with solver_sampling(s):
            buffer = self.generator(
                mi_scene=self.scene.mi_scene, src_positions=self.src_positions,
                tgt_positions=_points(probe_positions_m), samples_per_src=int(s.path_samples),
                max_num_paths_per_src=int(s.max_num_paths_per_src), max_depth=int(s.max_depth), los=False,
                specular_reflection=True, diffuse_reflection=False, refraction=True,
                diffraction=bool(s.diffraction), edge_diffraction=bool(s.edge_diffraction), seed=int(seed))
            buffer.schedule()
            # The generator reads the probability while its kernel is traced and run: evaluate inside.
            dr.eval()
        buffer.shrink()
        buffer.detach_geometry()
        return buffer

    def line_of_sight(self):
        """Stage 1 with depth 0: the unobstructed LoS path of every UE (already final, no image method)."""
        import drjit as dr

        num_ue = dr.width(self.tgt_positions)
        buffer = self.generator(
            mi_scene=self.scene.mi_scene, src_positions=self.src_positions, tgt_positions=self.tgt_positions,
            samples_per_src=1, max_num_paths_per_src=int(num_ue), max_depth=0, los=True,
            specular_reflection=False, diffuse_reflection=False, refraction=False, diffraction=False,
            edge_diffraction=False, seed=int(self.settings.seed))
        buffer.schedule()
        dr.eval()
        buffer.shrink()
        buffer.detach_geometry()
        return buffer

    def validate(self, buffer, diffraction: bool) -> dict | None:
        """Stages 2-3 on a buffer whose target indices are UE indices; numpy records of the valid paths."""
        if buffer.buffer_size == 0:
            return None
        buffer = self.image_method(scene=self.scene.mi_scene, paths=buffer, src_positions=self.src_positions,
                                   tgt_positions=self.tgt_positions, diffraction=diffraction,
                                   diffraction_lit_region=True)
        buffer = self.field_calculator(
            wavelength=self.scene.wavelength, paths=buffer, samples_per_src=int(self.settings.path_samples),
            diffraction=diffraction, src_positions=self.src_positions, tgt_positions=self.tgt_positions,
            src_orientations=self.src_orientations, tgt_orientations=self.tgt_orientations,
            src_antenna_patterns=self.src_patterns, tgt_antenna_patterns=self.tgt_patterns)
        buffer.discard_invalid()
        if buffer.buffer_size == 0:
            return None
        return _records(buffer, self.frequency_hz, int(self.settings.max_depth))


def _chain_keys(buffer) -> tuple[np.ndarray, np.ndarray]:
    """Probe index and chain identity of every candidate of a shoot-and-bounce buffer.

    Output
    ------
    probe : [num_candidates], int64
    key : [num_candidates, 3 * depth + 1], int64
        Interaction types, shapes, primitives per depth, and the diffracting edge of the wedge
        (``local_edge``; 0 for chains without diffraction): a primitive alone does not say which of its
        three edges diffracts.
    """
    from sionna.rt.constants import InteractionType

    n, d = buffer.buffer_size, buffer.depth_dim_size
    # [num_candidates, depth]
    types = np.array(buffer.interaction_types.numpy(), dtype=np.int64).reshape(n, d)
    shapes = np.array(buffer.shapes.numpy(), dtype=np.int64).reshape(n, d)
    primitives = np.array(buffer.primitives.numpy(), dtype=np.int64).reshape(n, d)
    edge = np.zeros(n, dtype=np.int64)
    if buffer.diffracting_wedges is not None:
        diffracts = np.any(types == int(InteractionType.DIFFRACTION), axis=1)
        edge = np.where(diffracts, np.array(buffer.diffracting_wedges.local_edge.numpy(), dtype=np.int64), 0)
    probe = np.array(buffer.target_indices.numpy(), dtype=np.int64)
    return probe, np.concatenate([types, shapes, primitives, edge[:, None]], axis=1)


def _gather_candidates(buffer, candidate: np.ndarray, ue: np.ndarray):
    """A new PathsBuffer holding ``buffer``'s candidates ``candidate`` (repeats allowed) aimed at UEs ``ue``.

    Copies every per-path field the image method and the field calculator read (sionna-rt 1.2.2's
    ``PathsBuffer`` layout: flat per-path arrays and ``[num_paths, depth]`` tensors).
    """
    import drjit as dr
    import mitsuba as mi
    from sionna.rt.path_solvers.paths_buffer import PathsBuffer
    from sionna.rt.utils import WedgeGeometry

    n, d = len(candidate), buffer.depth_dim_size
    diffraction = buffer.diffracting_wedges is not None
    out = PathsBuffer(n, buffer.max_depth, diffraction)
    index = mi.UInt(candidate.astype(np.uint32))
    # [n * depth] flat indices into the [num_candidates, depth] tensors
    tensor_index = dr.repeat(index, d) * d + dr.tile(dr.arange(mi.UInt, d), n)
    out._valid = dr.gather(mi.Bool, buffer.valid, index)
    out._src_indices = dr.gather(mi.UInt, buffer.source_indices, index)
    out._tgt_indices = mi.UInt(ue.astype(np.uint32))
    for name in ("_theta_t", "_phi_t", "_theta_r", "_phi_r"):
        setattr(out, name, dr.gather(mi.Float, getattr(buffer, name), index))
    for name, dtype, tensor in (("_interaction_types", mi.UInt, mi.TensorXu), ("_shapes", mi.UInt, mi.TensorXu),
                                ("_primitives", mi.UInt, mi.TensorXu), ("_vertices_x", mi.Float, mi.TensorXf),
                                ("_vertices_y", mi.Float, mi.TensorXf), ("_vertices_z", mi.Float, mi.TensorXf),
                                ("_probs", mi.Float, mi.TensorXf)):
        values = dr.gather(dtype, getattr(buffer, name).array, tensor_index)
        setattr(out, name, tensor(values, shape=(n, d)))
    if diffraction:
        out._diffracting_wedges = dr.gather(WedgeGeometry, buffer.diffracting_wedges, index)
    out._paths_counter = mi.UInt(n)
    # The buffer checks its tensors' width against these (a CUDA workaround in sionna-rt 1.2).
    out._tensor_width_lit = dr.width(out._shapes.array)
    out._tensor_width = dr.opaque(mi.UInt32, out._tensor_width_lit)
    return out


def _records(buffer, frequency_hz: float, max_depth: int) -> dict:
    """Valid paths of a validated buffer as flat numpy arrays ``[num_paths]`` (``ue`` = UE index).

    ``interaction_types`` is ``[num_paths, max_depth]`` (Sionna's ``InteractionType``, 0 = none), the layout
    :data:`ckmsim.raytrace.paths.INTERACTION_TYPES` has, whatever the depth of the buffer.
    """
    import drjit as dr

    n, d = buffer.buffer_size, buffer.depth_dim_size
    a = np.array(dr.real(buffer.a[0][0]), dtype=np.float64) + 1j * np.array(dr.imag(buffer.a[0][0]), dtype=np.float64)
    tau = np.array(buffer.tau.numpy(), dtype=np.float64)
    # Paths.a lacks the carrier phase that Paths.cir() applies; add it as cir(normalize_delays=False) does.
    a = a * np.exp(-2j * np.pi * frequency_hz * tau)
    dep_az, dep_el = sionna_to_az_el_deg(np.array(buffer.theta_t.numpy()), np.array(buffer.phi_t.numpy()))
    arr_az, arr_el = sionna_to_az_el_deg(np.array(buffer.theta_r.numpy()), np.array(buffer.phi_r.numpy()))
    # [num_paths, depth] -> [num_paths, max_depth]; a LoS path has no interaction at all
    types = np.zeros((n, max_depth), dtype=np.uint32)
    width = min(d, max_depth)
    types[:, :width] = np.array(buffer.interaction_types.numpy(), dtype=np.uint32).reshape(n, d)[:, :width]
    return {"ue": np.array(buffer.target_indices.numpy(), dtype=np.int64), "a": a, "delay_s": tau,
            "dep_az_deg": dep_az, "dep_el_deg": dep_el, "arr_az_deg": arr_az, "arr_el_deg": arr_el,
            "los": np.all(types == 0, axis=1), "interaction_types": types}


# ----------------------------------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------------------------------

def _drop_rounded_copies(flat: dict) -> dict:
    """Keep the strongest of the records that agree on UE, interaction types, delay to 0.1 ps and all four
    angles to 0.01 deg.

    Different probes and seeds reach one physical path through chains with different keys (another triangle of
    the same wall, the other wedge of an edge), so pooling meets the same path many times (on munich, with four
    seeds, about a third of the validated paths). This cheap vectorised pass removes almost all of them;
    :func:`ckmsim.raytrace.paths.deduplicate_paths` then removes the few that straddle a rounding boundary,
    with its own tolerances, so the result is the same, only faster.

    Input / Output
    --------------
    flat : dict of ``[num_records, ...]`` arrays (``ue``, the path variables, ``interaction_types``)
    """
    from ckmsim.raytrace.paths import INTERACTION_TYPES

    if len(flat["ue"]) < 2:
        return flat
    columns = [flat["ue"][:, None], flat[INTERACTION_TYPES].astype(np.int64),
               np.round(flat["delay_s"] * 1e13)[:, None].astype(np.int64)]
    columns += [np.round(flat[name] * 100.0)[:, None].astype(np.int64)
                for name in ("dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg")]
    key = np.ascontiguousarray(np.concatenate(columns, axis=1))
    strongest_first = np.argsort(-np.abs(flat["a"]) ** 2, kind="stable")
    rows = key[strongest_first].view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first = np.unique(rows, return_index=True)
    keep = np.sort(strongest_first[first])
    return {name: values[keep] for name, values in flat.items()}


def _records_to_chunk(records: list[dict], num_ue: int, max_depth: int) -> dict:
    """Flat path records -> per-UE arrays, strongest first.

    Output
    ------
    dict with the keys PATH_VARIABLES, ``[num_ue, num_paths]``, and
    :data:`ckmsim.raytrace.paths.INTERACTION_TYPES`, ``[num_ue, num_paths, max_depth]``.
    """
    from ckmsim.raytrace.paths import INTERACTION_TYPES, PATH_VARIABLES

    records = [r for r in records if r is not None]
    names = [name for name in PATH_VARIABLES if name != "valid"] + [INTERACTION_TYPES]
    if records:
        flat = {name: np.concatenate([r[name] for r in records]) for name in ["ue", *names]}
    else:
        flat = {"ue": np.zeros(0, dtype=np.int64), "a": np.zeros(0, dtype=np.complex128),
                "los": np.zeros(0, dtype=bool), INTERACTION_TYPES: np.zeros((0, max_depth), dtype=np.uint32),
                **{name: np.zeros(0) for name in names if name not in ("a", "los", INTERACTION_TYPES)}}
    flat = _drop_rounded_copies(flat)
    power = np.abs(flat["a"]) ** 2
    order = np.lexsort((-power, flat["ue"]))
    ue = flat["ue"][order]
    counts = np.bincount(ue, minlength=num_ue)
    # rank of each path within its UE, strongest first
    rank = np.arange(len(ue)) - np.repeat(np.cumsum(counts) - counts, counts)
    width = max(1, int(counts.max(initial=0)))
    chunk = {}
    for name in names:
        values = flat[name][order]
        fill = False if values.dtype == bool else (0 if values.dtype.kind in "iu" else
                                                   (0.0 if np.iscomplexobj(values) else np.nan))
        out = np.full((num_ue, width) + values.shape[1:], fill, dtype=values.dtype)
        out[ue, rank] = values
        chunk[name] = out
    chunk["valid"] = np.zeros((num_ue, width), dtype=bool)
    chunk["valid"][ue, rank] = True
    return chunk


def trace_pooled(scene, positions_m: np.ndarray, cells: np.ndarray, settings: RayTracingSettings,
                 progress: bool = True, stats: dict | None = None) -> dict:
    """All paths from the scene's transmitter to every UE cell, by candidate pooling.

    Input
    -----
    scene : sionna.rt.Scene with one transmitter and single-element arrays
        (see :func:`ckmsim.raytrace.scene_setup.place_base_station`); its receivers are ignored.
    positions_m : [num_ue, 3], float
        UE positions [m].
    cells : [num_ue, 2], int
        ``(row, col)`` grid cell of each UE (distinct); neighbourhoods are taken in these units.
    settings : RayTracingSettings
        ``pool_stride``, ``pool_radius``, ``pool_seeds`` and the PathSolver fields are read;
        ``receivers_per_call`` bounds the probes per shoot-and-bounce call (each seed group's probes are split
        into equal calls).
    progress : bool
        Show a progress bar over shoot-and-bounce calls.
    stats : dict or None
        If given, filled with the seconds ``los_s``, ``shoot_and_bounce_s``, ``validation_s``,
        ``assembly_s`` (per-UE arrays and deduplication), and the
        counts ``num_probes``, ``num_candidates`` (chains found for the probes), ``num_pairs`` (distinct
        (chain, UE) pairs validated), ``num_duplicate_paths_removed``.

    Output
    ------
    dict of numpy arrays ``[num_ue, num_paths]`` with keys ``PATH_VARIABLES`` and
    :data:`ckmsim.raytrace.paths.INTERACTION_TYPES` (``[num_ue, num_paths, max_depth]``), as
    ``ckmsim.raytrace.paths._solve_chunk`` returns (``a`` with the carrier phase), one entry per distinct
    path (:func:`ckmsim.raytrace.paths.deduplicate_paths`, interaction types compared), strongest first,
    invalid slots last, ``num_paths`` = the largest path count of a UE (at least 1).
    """
    from ckmsim.raytrace.paths import INTERACTION_TYPES, _sort_by_power, deduplicate_paths

    check_sionna_rt_version()
    positions_m = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    cells = np.asarray(cells).reshape(-1, 2)
    if len(cells) != len(positions_m):
        raise CkmsimError(f"cells must give one (row, col) per UE position. Received: {len(cells)} cells for "
                          f"{len(positions_m)} positions")
    stats = {} if stats is None else stats
    num_ue, max_depth = len(positions_m), int(settings.max_depth)
    probes, neighbours = plan_probes(cells, int(settings.pool_stride), int(settings.pool_radius))
    stats.update(los_s=0.0, shoot_and_bounce_s=0.0, validation_s=0.0, assembly_s=0.0, num_probes=int(len(probes)),
                 num_candidates=0, num_pairs=0, num_duplicate_paths_removed=0)
    records = []
    if num_ue:
        stages = _Stages(scene, positions_m, settings)
        start = time.perf_counter()
        records.append(stages.validate(stages.line_of_sight(), diffraction=False))
        stats["los_s"] = time.perf_counter() - start
        if max_depth > 0:
            calls, per_call = _probe_calls(probe_seed_groups(cells[probes], int(settings.pool_stride),
                                                             int(settings.pool_seeds)),
                                           int(settings.receivers_per_call))
            for group, members in tqdm(calls, desc="PathSolver (pooled)", unit="call", disable=not progress):
                records.extend(_trace_probe_call(stages, positions_m, probes[members],
                                                 [neighbours[m] for m in members], per_call,
                                                 int(settings.seed) + int(group), num_ue, stats))
    start = time.perf_counter()
    chunk = deduplicate_paths(_records_to_chunk(records, num_ue, max_depth))
    num_validated = sum(len(r["ue"]) for r in records if r is not None)
    stats["num_duplicate_paths_removed"] = int(num_validated - chunk["valid"].sum())
    chunk = _sort_by_power(chunk)
    width = max(1, int(chunk["valid"].sum(axis=1).max(initial=0)))
    stats["assembly_s"] = time.perf_counter() - start
    return {name: values[:, :width] for name, values in chunk.items()}


def _probe_calls(group: np.ndarray, max_per_call: int) -> tuple[list[tuple[int, np.ndarray]], int]:
    """Split the probes into shoot-and-bounce calls: per seed group, equal calls of at most ``max_per_call``.

    Output
    ------
    calls : list of ``(group, members)``, members indexing the probes
    per_call : int
        The size every call is padded to, so that Dr.Jit compiles the shoot-and-bounce kernel (which
        depends on the number of targets) once; equal calls keep the padding small.
    """
    calls, per_call = [], 1
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        num_calls = -(-len(members) // max_per_call)
        size = -(-len(members) // num_calls)
        per_call = max(per_call, size)
        calls.extend((int(g), members[first:first + size]) for first in range(0, len(members), size))
    return calls, per_call


def _trace_probe_call(stages: _Stages, positions_m: np.ndarray, probes: np.ndarray, neighbours: list[np.ndarray],
                      per_call: int, seed: int, num_ue: int, stats: dict) -> list[dict]:
    """Shoot-and-bounce for one batch of probes with ``seed``, then validate their chains for their neighbours.

    The batch is padded to ``per_call`` probes with copies of its last probe (whose candidates are dropped).
    """
    start = time.perf_counter()
    padded = np.concatenate([probes, np.repeat(probes[-1:], per_call - len(probes))])
    buffer = stages.shoot_and_bounce(positions_m[padded], seed)
    stats["shoot_and_bounce_s"] += time.perf_counter() - start
    if buffer.buffer_size >= int(stages.settings.max_num_paths_per_src):
        # Sionna drops candidates beyond the budget without a word; say so.
        warnings.warn(f"Pooled shoot-and-bounce filled its candidate budget (max_num_paths_per_src="
                      f"{stages.settings.max_num_paths_per_src}) for {len(probes)} probes: candidates were dropped. "
                      "Raise max_num_paths_per_src or lower receivers_per_call.", RuntimeWarning, stacklevel=3)

    start = time.perf_counter()
    records = []
    if buffer.buffer_size > 0:
        probe, key = _chain_keys(buffer)
        # Candidates of padding probes, and paths the generator already finalised (it does so only for
        # diffuse reflections, which are off), are not re-validated.
        keep = np.flatnonzero((probe < len(probes)) & ~np.array(buffer.valid.numpy(), dtype=bool))
        stats["num_candidates"] += int(len(keep))
        candidate, ue = _distinct_pairs(probe[keep], key[keep], neighbours, num_ue)
        candidate = keep[candidate]
        stats["num_pairs"] += int(len(candidate))
        for first in range(0, len(candidate), MAX_PAIRS_PER_CALL):
            part = slice(first, first + MAX_PAIRS_PER_CALL)
            gathered = _gather_candidates(buffer, candidate[part], ue[part])
            records.append(stages.validate(gathered, diffraction=bool(stages.settings.diffraction)))
    stats["validation_s"] += time.perf_counter() - start
    return records

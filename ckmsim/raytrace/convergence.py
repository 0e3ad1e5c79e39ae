"""Has the PathSolver converged? Compare the strongest paths of a run against a reference.

Shoot-and-bounce finds a path only if one of its rays passes close to it; a path off a short edge (munich's
diffractions) needs many rays. A run has *converged* at a UE when its ``k``-th strongest path is the reference's
``k``-th strongest path: the same power within ``tol_db`` and the same departure and arrival directions within
``tol_deg``. The reference is the union of all distinct paths of several runs (:func:`union_reference`): a path
found by any run exists (the image method and field calculator make every returned path exact), so the union is
the best available path list, and more rays can only add to it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import unit_vectors
from ckmsim.raytrace.paths import (DUPLICATE_ANGLE_TOL_DEG, DUPLICATE_DELAY_TOL_S, INTERACTION_TYPES,
                                   PATH_VARIABLES, _angle_between_deg, _pad_paths, _sort_by_power,
                                   deduplicate_paths, path_set_arrays, trace_paths)
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.validation import check_fraction, is_finite_number, is_whole_number


def _check_same_ues(path_sets: list[xr.Dataset]) -> None:
    """The path sets hold the same UEs (positions equal to 1 mm) in the same order."""
    first = path_sets[0]
    for index, other in enumerate(path_sets[1:], start=1):
        if other.sizes["ue"] != first.sizes["ue"]:
            raise CkmsimError(f"path set {index} has {other.sizes['ue']} UEs, path set 0 has {first.sizes['ue']}; "
                              "they must hold the same UEs")
        for name in ("ue_x_m", "ue_y_m", "ue_z_m"):
            if not np.allclose(other[name].values, first[name].values, atol=1e-3):
                raise CkmsimError(f"path set {index} has other UE positions ({name}) than path set 0")


def union_reference(path_sets: list[xr.Dataset], delay_tol_s: float = DUPLICATE_DELAY_TOL_S,
                    angle_tol_deg: float = DUPLICATE_ANGLE_TOL_DEG) -> xr.Dataset:
    """All distinct paths of several runs on the same UEs, strongest first.

    A path found by several runs is kept once (the copy of the run listed first among the strongest copies;
    see :func:`ckmsim.raytrace.paths.deduplicate_paths` for "the same path").

    Input
    -----
    path_sets : list of path sets (see :mod:`ckmsim.raytrace.paths`) of the same UEs.
    delay_tol_s, angle_tol_deg : float. What counts as the same path [s], [deg].

    Output
    ------
    path set : xarray.Dataset with dims ``ue`` and ``path`` (as many slots as the UE with most distinct paths),
        coords and attrs of the first set, and ``union_of`` (the number of runs) in attrs.
    """
    if not path_sets:
        raise CkmsimError("union_reference needs at least one path set. Received: path_sets=[]")
    _check_same_ues(path_sets)
    parts = [path_set_arrays(path_set) for path_set in path_sets]
    names = PATH_VARIABLES
    depths = {part[INTERACTION_TYPES].shape[-1] if INTERACTION_TYPES in part else None for part in parts}
    if len(depths) == 1 and None not in depths:
        names = names + (INTERACTION_TYPES,)
    merged = {name: np.concatenate([part[name] for part in parts], axis=1) for name in names}
    merged = _sort_by_power(deduplicate_paths(merged, delay_tol_s, angle_tol_deg))
    num_paths = max(1, int(merged["valid"].sum(axis=1).max(initial=0)))
    merged = _pad_paths(merged, num_paths)
    first = path_sets[0]
    data = {name: (("ue", "path"), merged[name].astype(first[name].dtype)) for name in PATH_VARIABLES}
    if INTERACTION_TYPES in names:
        data[INTERACTION_TYPES] = (("ue", "path", "depth"), merged[INTERACTION_TYPES].astype(np.uint8))
    union = xr.Dataset(data, coords={name: first[name] for name in ("ue_x_m", "ue_y_m", "ue_z_m")},
                       attrs=dict(first.attrs))
    union.attrs["union_of"] = len(path_sets)
    return union


def _rank_arrays(path_set: xr.Dataset, num_paths: int) -> dict:
    """Power [dB], unit directions and validity of the ``num_paths`` strongest paths ``[num_ue, num_paths]``."""
    arrays = _pad_paths(path_set_arrays(path_set), num_paths)
    valid = arrays["valid"].astype(bool)
    with np.errstate(divide="ignore"):
        power_db = np.where(valid, 10.0 * np.log10(np.abs(arrays["a"]) ** 2), np.nan)
    return {"valid": valid, "power_db": power_db,
            "dep": unit_vectors(arrays["dep_az_deg"], arrays["dep_el_deg"]),
            "arr": unit_vectors(arrays["arr_az_deg"], arrays["arr_el_deg"])}


def strongest_paths_match(candidate: xr.Dataset, reference: xr.Dataset, num_paths: int = 2, tol_db: float = 0.5,
                          tol_deg: float = 0.5) -> dict:
    """Fraction of UEs whose ``k``-th strongest path is the reference's, for ``k < num_paths``.

    Rank ``k`` of a UE matches when both sets have a ``k``-th path whose powers differ by at most ``tol_db``
    and whose departure and arrival directions each differ by at most ``tol_deg``, or when neither has one
    (a UE with a single path has its "no second path" right). UEs without any reference path are left out;
    NLoS UEs are those without a LoS path in the reference.

    Input
    -----
    candidate, reference : path sets of the same UEs (see :mod:`ckmsim.raytrace.paths`).
    num_paths : int >= 1. Ranks compared.
    tol_db : float >= 0. Power tolerance [dB].
    tol_deg : float >= 0. Direction tolerance [deg], at both ends.

    Output
    ------
    dict with
        ``match`` : list of ``num_paths`` floats, fraction of UEs whose rank ``k`` matches;
        ``match_nlos`` : the same over NLoS UEs (NaN without any);
        ``num_ue``, ``num_nlos_ue`` : the UEs counted;
        ``per_ue`` : ``[num_ue, num_paths]`` bool, rank ``k`` of UE ``u`` matches (UEs without a reference
        path: False, and ``counted`` False);
        ``counted``, ``nlos`` : ``[num_ue]`` bool.
    """
    if not (isinstance(num_paths, (int, np.integer)) and num_paths >= 1):
        raise CkmsimError(f"num_paths must be an integer >= 1. Received: num_paths={num_paths!r}")
    for name, value in (("tol_db", tol_db), ("tol_deg", tol_deg)):
        if not (np.isfinite(value) and value >= 0):
            raise CkmsimError(f"{name} must be a number >= 0. Received: {name}={value!r}")
    _check_same_ues([reference, candidate])
    ref = _rank_arrays(reference, num_paths)
    cand = _rank_arrays(candidate, num_paths)
    both = ref["valid"] & cand["valid"]
    with np.errstate(invalid="ignore"):
        same = both & (np.abs(ref["power_db"] - cand["power_db"]) <= tol_db) \
            & (_angle_between_deg(ref["dep"], cand["dep"]) <= tol_deg) \
            & (_angle_between_deg(ref["arr"], cand["arr"]) <= tol_deg)
    neither = ~ref["valid"] & ~cand["valid"]
    counted = np.asarray(reference["valid"].values, dtype=bool).any(axis=1)
    nlos = counted & ~np.asarray(reference["los"].values, dtype=bool).any(axis=1)
    per_ue = (same | neither) & counted[:, None]

    def fractions(mask):
        if not mask.any():
            return [float("nan")] * num_paths
        return [float(per_ue[mask, k].mean()) for k in range(num_paths)]

    return {"match": fractions(counted), "match_nlos": fractions(nlos), "num_ue": int(counted.sum()),
            "num_nlos_ue": int(nlos.sum()), "per_ue": per_ue, "counted": counted, "nlos": nlos}


# ------------------------------------------------------------------------------------------------------------
# The per-scene check: trace probe UEs at increasing rays until the strongest paths stop changing
# ------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvergenceCheck:
    """Settings of a convergence check (:func:`check_convergence`).

    Parameters
    ----------
    ray_levels : tuple of int, increasing
        PathSolver rays per source tried, in order (e.g. 3e4, 1e5, 3e5, 1e6).
    num_probes : int >= 1
        UEs traced: open cells drawn at random (all open cells if there are fewer).
    num_paths : int >= 1
        Strongest paths per UE compared (2: the PGM1/PGM2 layers).
    tol_db, tol_deg : float >= 0
        Same path: powers within ``tol_db`` [dB], departure and arrival directions within ``tol_deg`` [deg].
    target : tuple of ``num_paths`` floats in [0, 1]
        Match wanted per rank (strongest, second, ...), over all probe UEs.
    seed : int >= 0
        Seed of the probe draw.
    """

    ray_levels: tuple[int, ...] = (30_000, 100_000, 300_000, 1_000_000)
    num_probes: int = 256
    num_paths: int = 2
    tol_db: float = 0.5
    tol_deg: float = 0.5
    target: tuple[float, ...] = (0.95, 0.90)
    seed: int = 0

    def __post_init__(self):
        levels = tuple(self.ray_levels)
        if len(levels) < 2 or not all(is_whole_number(v, minimum=1) for v in levels) or \
                any(b <= a for a, b in zip(levels, levels[1:])):
            raise CkmsimError(f"ConvergenceCheck.ray_levels must be >= 2 increasing positive integers. "
                              f"Received: ray_levels={self.ray_levels!r}")
        object.__setattr__(self, "ray_levels", tuple(int(v) for v in levels))
        for name, minimum in (("num_probes", 1), ("num_paths", 1), ("seed", 0)):
            if isinstance(getattr(self, name), bool) or not is_whole_number(getattr(self, name), minimum=minimum):
                raise CkmsimError(f"ConvergenceCheck.{name} must be an integer >= {minimum}. "
                                  f"Received: {name}={getattr(self, name)!r}")
            object.__setattr__(self, name, int(getattr(self, name)))
        for name in ("tol_db", "tol_deg"):
            if not (is_finite_number(getattr(self, name)) and getattr(self, name) >= 0):
                raise CkmsimError(f"ConvergenceCheck.{name} must be a number >= 0. Received: {name}={getattr(self, name)!r}")
        target = tuple(self.target)
        if len(target) != self.num_paths:
            raise CkmsimError(f"ConvergenceCheck.target needs one value per compared path (num_paths="
                              f"{self.num_paths}). Received: target={self.target!r}")
        object.__setattr__(self, "target", tuple(check_fraction(v, "ConvergenceCheck.target") for v in target))

    def to_dict(self) -> dict:
        """Plain-dict form, for the manifest."""
        out = asdict(self)
        out["ray_levels"] = list(self.ray_levels)
        out["target"] = list(self.target)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "ConvergenceCheck":
        """Inverse of :meth:`to_dict`; unknown keys fail with their names."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CkmsimError(f"Unknown convergence-check setting(s) {unknown}; expected a subset of {sorted(known)}")
        return cls(**values)


@dataclass
class ConvergenceLevel:
    """One traced ray level: its time and its match against the check's final reference."""

    rays: int
    time_s: float
    match: list[float]
    match_nlos: list[float]
    mean_paths: float

    def meets(self, target) -> bool:
        return all(m >= t for m, t in zip(self.match, target))


@dataclass
class ConvergenceReport:
    """Result of :func:`check_convergence`.

    ``converged_rays`` is the fewest rays whose strongest paths match the reference at ``check.target``,
    verified against a reference that includes a run with more rays; None if no level reached it (the last
    level cannot be verified: it is part of its own reference).
    """

    check: ConvergenceCheck
    levels: list[ConvergenceLevel]
    converged_rays: int | None
    num_probes: int
    num_nlos: int
    reference_runs: int = 0
    settings: dict = field(default_factory=dict)

    def level(self, rays: int) -> ConvergenceLevel | None:
        """The level traced with ``rays``, if any."""
        return next((lv for lv in self.levels if lv.rays == rays), None)

    def to_dict(self) -> dict:
        """Plain-dict form, for the manifest."""
        return {"check": self.check.to_dict(), "converged_rays": self.converged_rays, "num_probes": self.num_probes,
                "num_nlos": self.num_nlos, "reference_runs": self.reference_runs, "ray_tracing": self.settings,
                "levels": [asdict(level) for level in self.levels]}

    def table(self) -> str:
        """A Markdown table: rays, time, match per rank (NLoS in parentheses)."""
        names = ["strongest", "second", "third"] + [f"path {k}" for k in range(3, self.check.num_paths)]
        head = "| rays | time | " + " | ".join(f"{names[k]} path right (NLoS)" for k in range(self.check.num_paths))
        lines = [head + " |", "|---:|---:|" + "---|" * self.check.num_paths]
        for index, level in enumerate(self.levels):
            cells = [f"{100 * m:.1f} % ({100 * n:.1f} %)" for m, n in zip(level.match, level.match_nlos)]
            note = " (in its own reference)" if index == len(self.levels) - 1 else ""
            lines.append(f"| {level.rays:.0e}{note} | {level.time_s:.1f} s | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: where the target was reached."""
        goal = " / ".join(f"{100 * t:.0f} %" for t in self.check.target)
        if self.converged_rays is None:
            return (f"target {goal} not reached within {self.levels[-1].rays:.0e} rays on {self.num_probes} probe "
                    f"UEs ({self.num_nlos} NLoS)")
        return f"target {goal} reached at {self.converged_rays:.0e} rays on {self.num_probes} probe UEs ({self.num_nlos} NLoS)"


def choose_probes(num_open: int, num_probes: int, seed: int) -> np.ndarray:
    """Indices ``[min(num_open, num_probes)]`` (sorted) of the probe UEs among ``num_open`` open cells."""
    if num_open <= num_probes:
        return np.arange(num_open)
    return np.sort(np.random.default_rng(seed).choice(num_open, size=num_probes, replace=False))


def probe_positions_m(scene, grid, check: ConvergenceCheck) -> np.ndarray:
    """Positions ``[num_probes, 3]`` [m] of the probe UEs: open cells of ``grid`` drawn by ``check.seed``, each UE
    where the ground truth puts it (cell centre, ``grid.height_m`` above the cell's local ground)."""
    from ckmsim.scene.geometry import cell_geometry

    geometry = cell_geometry(scene, grid)
    rows, cols = np.nonzero(~geometry.building)
    chosen = choose_probes(len(rows), check.num_probes, check.seed)
    return grid.cell_centers_m(geometry.ground_m)[rows[chosen], cols[chosen]]


def check_convergence(scene, positions_m: np.ndarray, settings: RayTracingSettings, check: ConvergenceCheck,
                      must_verify_rays: int | None = None, warm_up: bool = True, stop_early: bool = True,
                      reference_runs: int = 0, progress: bool = True, log=print) -> ConvergenceReport:
    """Trace UEs at the check's increasing ray levels until their strongest paths stop changing.

    Each level is one PathSolver run of all probe UEs (``settings`` with ``path_samples`` replaced). After a new
    level, the previous one is compared with the union of all runs so far (:func:`union_reference`); the
    check stops once a level meets ``check.target`` there and, when ``must_verify_rays`` is given, that level
    has at least that many rays (so a config's own ray count is measured against more rays). Every level is then
    scored against the final union.

    Input
    -----
    scene : sionna.rt.Scene with its transmitter placed (:func:`ckmsim.raytrace.scene_setup.place_base_station`)
    positions_m : [num_probes, 3], float. Probe UE positions [m] (see :func:`choose_probes`).
    settings : RayTracingSettings (everything but ``path_samples`` and ``receivers_per_call`` is kept)
    check : ConvergenceCheck
    must_verify_rays : int or None. Rays that must be verified before stopping (e.g. a config's ``path_samples``).
    warm_up : bool. Trace the lowest level once untimed first, so that no level's time includes Dr.Jit's
        kernel compilation (once per receiver count, ~10-20 s on a CPU).
    stop_early : bool. Stop at the first verified level (True) or trace every level (for measurements).
    reference_runs : int >= 0. Extra runs at the highest traced level with other seeds (``settings.seed + 1``,
        ...), added to the reference only: its union then holds paths a single run finds by chance.
    progress : bool. Progress bars per level.
    log : callable(str) or None. One line per traced level.

    Output
    ------
    ConvergenceReport
    """
    positions_m = np.asarray(positions_m, dtype=np.float64).reshape(-1, 3)
    if len(positions_m) == 0:
        raise CkmsimError("check_convergence needs at least one probe UE; the study area has no open cell")
    levels = sorted(set(check.ray_levels) | ({int(must_verify_rays)} if must_verify_rays else set()))
    if warm_up:
        start = time.perf_counter()
        trace_paths(scene, positions_m, replace(settings, path_samples=int(levels[0]),
                                                receivers_per_call=len(positions_m)), progress=False)
        if log is not None:
            log(f"warm-up (kernel compilation) {time.perf_counter() - start:.1f} s")
    runs, times = [], []
    for index, rays in enumerate(levels):
        level_settings = replace(settings, path_samples=int(rays), receivers_per_call=len(positions_m))
        start = time.perf_counter()
        runs.append(trace_paths(scene, positions_m, level_settings, progress=progress))
        times.append(time.perf_counter() - start)
        line = f"rays {rays:.0e}: {times[-1]:.1f} s"
        if index >= 1:
            previous = strongest_paths_match(runs[-2], union_reference(runs), check.num_paths, check.tol_db,
                                             check.tol_deg)
            line += f"; {levels[index - 1]:.0e} rays against the union so far: " + \
                " / ".join(f"{100 * m:.1f} %" for m in previous["match"])
            done = all(m >= t for m, t in zip(previous["match"], check.target)) and \
                (must_verify_rays is None or levels[index - 1] >= must_verify_rays)
        else:
            done = False
        if log is not None:
            log(line)
        if done and stop_early:
            break
    extra = []
    for index in range(int(reference_runs)):
        extra_settings = replace(settings, path_samples=int(levels[len(runs) - 1]), receivers_per_call=len(positions_m),
                                 seed=int(settings.seed) + 1 + index)
        start = time.perf_counter()
        extra.append(trace_paths(scene, positions_m, extra_settings, progress=progress))
        if log is not None:
            log(f"reference run {index + 1}/{reference_runs} ({extra_settings.path_samples:.0e} rays, seed "
                f"{extra_settings.seed}): {time.perf_counter() - start:.1f} s")
    reference = union_reference(runs + extra)
    scored = []
    for rays, elapsed, run in zip(levels, times, runs):
        match = strongest_paths_match(run, reference, check.num_paths, check.tol_db, check.tol_deg)
        scored.append(ConvergenceLevel(rays=int(rays), time_s=float(elapsed), match=match["match"],
                                       match_nlos=match["match_nlos"],
                                       mean_paths=float(run["valid"].values.sum(axis=1).mean())))
    # the last level is part of its own reference and cannot be verified
    converged = next((lv.rays for lv in scored[:-1] if lv.meets(check.target)), None)
    counted = strongest_paths_match(reference, reference, check.num_paths)
    return ConvergenceReport(check=check, levels=scored, converged_rays=converged, num_probes=len(positions_m),
                             num_nlos=counted["num_nlos_ue"], reference_runs=len(runs) + len(extra),
                             settings=replace(settings, receivers_per_call=len(positions_m)).to_dict())

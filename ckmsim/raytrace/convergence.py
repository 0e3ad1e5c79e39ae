"""Has the PathSolver converged? Compare the strongest paths of a run against a reference.

Shoot-and-bounce finds a path only if one of its rays passes close to it; a path off a short edge (munich's
diffractions) needs many rays. A run has *converged* at a UE when its ``k``-th strongest path is the reference's
``k``-th strongest path: the same power within ``tol_db`` and the same departure and arrival directions within
``tol_deg``. The reference is the union of all distinct paths of several runs (:func:`union_reference`): a path
found by any run exists (the image method and field calculator make every returned path exact), so the union is
the best available path list, and more rays can only add to it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import unit_vectors
from ckmsim.raytrace.paths import (DUPLICATE_ANGLE_TOL_DEG, DUPLICATE_DELAY_TOL_S, PATH_VARIABLES,
                                   _angle_between_deg, _pad_paths, _sort_by_power, deduplicate_paths,
                                   path_set_arrays)


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
    merged = {name: np.concatenate([part[name] for part in parts], axis=1) for name in PATH_VARIABLES}
    merged = _sort_by_power(deduplicate_paths(merged, delay_tol_s, angle_tol_deg))
    num_paths = max(1, int(merged["valid"].sum(axis=1).max(initial=0)))
    merged = _pad_paths(merged, num_paths)
    first = path_sets[0]
    data = {name: (("ue", "path"), merged[name].astype(first[name].dtype)) for name in PATH_VARIABLES}
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

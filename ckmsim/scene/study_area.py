"""Choose a study area (a square grid) and a default BS position inside any scene.

A quickstart needs a square of ``num_cells x num_cells`` cells that lies inside the scene and holds enough
*open* cells (UE positions, :func:`ckmsim.scene.geometry.cell_geometry`), and a BS above the local roofs.
The bounding-box centre of a scene is often a poor choice: a courtyard, a roof, or off the terrain. The picker:

1. **Fits the area to the scene.** When the scene's footprint is narrower than ``num_cells * cell_size_m``
   (Sionna's toy scenes are 1-40 m across), the cell size shrinks so that the grid spans the footprint's
   shorter side (rounded down to 3 significant digits): the cell count (and so every array shape) stays as configured, the resolution follows the
   scene.
2. **Surveys the scene once** on a lattice of the area's cell size (coarser for large scenes, at most
   ``SURVEY_MAX_CELLS`` per side) and marks open cells: not building, and standing on a surface, except in
   scenes with no surface under any survey cell, whose UEs stand on the z = 0 plane.
3. **Scores candidate windows** (centres on a lattice of a quarter of the area's side, plus the footprint's
   centre and an optional preferred centre) by their open-cell fraction. Windows below
   ``min_open_fraction`` do not qualify; among the others the one whose fraction is nearest
   ``target_open_fraction`` (in steps of 0.05; a street area with buildings, not a park or an empty edge of
   the map) wins, ties going to the window nearest the preferred centre (default: the footprint's centre).
4. **Checks the pick at full resolution** (the survey may be coarser) and falls back to the next candidates.

When no window qualifies it raises one :class:`~ckmsim.errors.CkmsimError` naming the scene and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import cell_geometry, is_enclosure, roof_height_m
from ckmsim.scene.load import scene_bounds

#: A window qualifies when at least this fraction of its cells are open.
MIN_OPEN_FRACTION = 0.2
#: Preferred open fraction: streets and squares between buildings (munich's curated 64x64 area: 0.60).
TARGET_OPEN_FRACTION = 0.6
#: Largest survey lattice side [cells]; larger scenes are surveyed coarser than the area's cells.
SURVEY_MAX_CELLS = 384
#: Full-resolution checks of the best-scored windows before giving up.
MAX_FULL_CHECKS = 8
#: Radius around the BS whose highest surface the BS clears [m] (a city block), at most half the area's side.
ROOF_RADIUS_M = 30.0


@dataclass(frozen=True)
class StudyArea:
    """A chosen study area.

    Attributes
    ----------
    grid : Grid
    open_fraction : float
        Fraction of the grid's cells that are open (at full resolution).
    num_candidates : int
        Candidate windows scored.
    cell_size_shrunk : bool
        The cell size was reduced so that the area fits the scene.
    """

    grid: Grid
    open_fraction: float
    num_candidates: int
    cell_size_shrunk: bool


def fitted_cell_size_m(scene, num_cells: int, cell_size_m: float) -> float:
    """``cell_size_m``, or the size that makes ``num_cells`` cells span the footprint's shorter side if the
    area would not fit otherwise [m]."""
    bounds = scene_bounds(scene)
    side_m = min(bounds.x_max - bounds.x_min, bounds.y_max - bounds.y_min)
    if not side_m > 0:
        raise CkmsimError(f"Scene footprint is degenerate (x {bounds.x_min:.2f}..{bounds.x_max:.2f} m, "
                          f"y {bounds.y_min:.2f}..{bounds.y_max:.2f} m): no study area fits")
    if num_cells * cell_size_m <= side_m:
        return float(cell_size_m)
    # rounded down to 3 significant digits: a readable size, and float rounding never puts an edge outside
    size = side_m / num_cells * (1.0 - 1e-6)
    scale = 10.0 ** (np.floor(np.log10(size)) - 2)
    return float(np.floor(size / scale) * scale)


def _open_cells(scene, grid: Grid, enclosure: bool, void_is_open: bool) -> np.ndarray:
    """``[num_y, num_x]`` bool: cells a UE may stand on (see the module docstring, step 2)."""
    geometry = cell_geometry(scene, grid, enclosure=enclosure)
    return ~geometry.building & (geometry.has_ground | void_is_open)


def pick_study_area(scene, scene_name: str, num_cells: int, cell_size_m: float, ue_height_m: float,
                    preferred_center_m: tuple[float, float] | None = None,
                    min_open_fraction: float = MIN_OPEN_FRACTION,
                    target_open_fraction: float = TARGET_OPEN_FRACTION) -> StudyArea:
    """The study area of a scene (see the module docstring).

    Input
    -----
    scene : sionna.rt.Scene
    scene_name : str, named in errors
    num_cells : int, cells per side
    cell_size_m : float, requested cell size [m] (shrunk for small scenes)
    ue_height_m : float, UE height above the local ground [m]
    preferred_center_m : (x, y), optional
        Tried first and used when it qualifies; also the tie-break target. Default: the footprint's centre,
        used for ties only.
    min_open_fraction, target_open_fraction : float in [0, 1]

    Output
    ------
    StudyArea
    """
    bounds = scene_bounds(scene)
    cell = fitted_cell_size_m(scene, num_cells, cell_size_m)
    side_m = num_cells * cell
    enclosure = is_enclosure(scene)
    center = ((bounds.x_min + bounds.x_max) / 2, (bounds.y_min + bounds.y_max) / 2)

    # 2. one survey of the whole footprint
    width_x, width_y = bounds.x_max - bounds.x_min, bounds.y_max - bounds.y_min
    survey_cell = max(cell, max(width_x, width_y) / SURVEY_MAX_CELLS)
    survey = Grid(center[0], center[1], max(1, int(width_x // survey_cell)), max(1, int(width_y // survey_cell)),
                  survey_cell, float(ue_height_m))
    geometry = cell_geometry(scene, survey, enclosure=enclosure)
    void_is_open = not geometry.has_ground.any()
    open_survey = ~geometry.building & (geometry.has_ground | void_is_open)

    # 3. candidate windows: centres where the whole area lies inside the footprint
    def axis(lo, hi):
        first, last = lo + side_m / 2, hi - side_m / 2
        count = int(np.floor((last - first) / (side_m / 4))) + 1 if last > first else 1
        return np.linspace(first, last, count) if last > first else np.array([(lo + hi) / 2])

    cx, cy = np.meshgrid(axis(bounds.x_min, bounds.x_max), axis(bounds.y_min, bounds.y_max))
    candidates = np.concatenate([np.array([center]), np.stack([cx.ravel(), cy.ravel()], axis=1)])
    target = center
    if preferred_center_m is not None:
        target = (float(preferred_center_m[0]), float(preferred_center_m[1]))
        candidates = np.concatenate([np.array([target]), candidates])
    fractions = _window_fractions(open_survey, survey, candidates, side_m)
    quantised = np.round(np.abs(fractions - target_open_fraction) / 0.05)
    distance = np.hypot(candidates[:, 0] - target[0], candidates[:, 1] - target[1])
    qualifying = fractions >= min_open_fraction
    order = [int(i) for i in np.lexsort((distance, quantised)) if qualifying[i]]
    if preferred_center_m is not None and qualifying[0]:
        order = [0] + [i for i in order if i != 0]

    # 4. full-resolution check of the best candidates
    best_seen = 0.0
    for index in order[:MAX_FULL_CHECKS]:
        x, y = (float(v) for v in candidates[index])
        grid = Grid(x, y, num_cells, num_cells, cell, float(ue_height_m))
        fraction = float(_open_cells(scene, grid, enclosure, void_is_open).mean())
        best_seen = max(best_seen, fraction)
        if fraction >= min_open_fraction:
            return StudyArea(grid, fraction, len(candidates), cell < cell_size_m)
    surveyed = float(fractions.max()) if len(fractions) else 0.0
    raise CkmsimError(
        f"No study area of {num_cells}x{num_cells} cells of {cell:g} m fits scene '{scene_name}' with at least "
        f"{min_open_fraction:.0%} open cells (UE positions outside buildings): the best of {len(candidates)} "
        f"candidate windows has {max(surveyed, best_seen):.0%}. Pass --center (and --bs) to choose the area")


def _window_fractions(open_cells: np.ndarray, survey: Grid, centers_m: np.ndarray, side_m: float) -> np.ndarray:
    """Open fraction of the survey cells whose centres lie in each square window.

    Input
    -----
    open_cells : [num_y, num_x] bool on ``survey``
    centers_m : [num_windows, 2] window centres [m]
    side_m : window side [m]

    Output
    ------
    fractions : [num_windows], float64 (0 for a window holding no survey cell centre)
    """
    # summed-area table with a zero row and column in front: [num_y + 1, num_x + 1]
    table = np.zeros((survey.num_y + 1, survey.num_x + 1))
    table[1:, 1:] = np.cumsum(np.cumsum(open_cells.astype(np.float64), axis=0), axis=1)
    x_m, y_m = survey.x_m, survey.y_m
    x0 = np.searchsorted(x_m, centers_m[:, 0] - side_m / 2, side="left")
    x1 = np.searchsorted(x_m, centers_m[:, 0] + side_m / 2, side="right")
    y0 = np.searchsorted(y_m, centers_m[:, 1] - side_m / 2, side="left")
    y1 = np.searchsorted(y_m, centers_m[:, 1] + side_m / 2, side="right")
    counts = (x1 - x0) * (y1 - y0)
    sums = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def default_bs_position_m(scene, grid: Grid, mast_m: float) -> tuple[float, float, float]:
    """A BS above the centre of ``grid``: ``mast_m`` over the highest surface within ``ROOF_RADIUS_M`` (at most
    half the area's side) of it, the local roofs. In an enclosure (a room scene) the BS stays at least
    ``mast_m / 4`` below the ceiling.

    Output
    ------
    (x, y, z) [m]
    """
    enclosure = is_enclosure(scene)
    radius = min(ROOF_RADIUS_M, 0.5 * grid.num_x * grid.cell_size_m, 0.5 * grid.num_y * grid.cell_size_m)
    roofs = roof_height_m(scene, grid.center_x_m, grid.center_y_m, radius,
                          cell_size_m=min(1.0, grid.cell_size_m), enclosure=enclosure)
    z = roofs + float(mast_m)
    if enclosure:
        z = min(z, scene_bounds(scene).z_max - float(mast_m) / 4)
    return (float(grid.center_x_m), float(grid.center_y_m), float(z))

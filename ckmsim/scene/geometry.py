"""Scene geometry queries: local ground, surface heights, building masks and UE positions, by casting
vertical rays through each cell centre (zeros of a radio map are not a building mask).

**Local ground.** One ray per cell centre is shot straight down from above the scene and continued below
every surface it meets, so each cell's whole column of surfaces is known. The *local ground* is the lowest
of them. This needs no knowledge of which mesh is the terrain (Sionna's ``san_francisco`` calls it
``Terrain``, OSM and procedural scenes ``ground``, toy scenes nothing at all) and is the terrain wherever a
terrain or ground mesh lies under the buildings; building meshes whose bottom faces coincide with a flat
ground give the same height. Cells whose column meets no surface (outside a ground plane, or toy scenes with
no ground such as ``simple_wedge``) take the ground of the nearest cell that has one, or z = 0 (Sionna's
device plane, where the UEs stood before local ground existed) when no cell of the grid has any.

**Rooms.** Sionna's ``box`` scenes are the *inside* of a closed box: no column has an upward-facing surface
at its bottom (the floor is the box's underside) and the box's lid spans the scene's top. Such a scene is an
*enclosure*: surfaces at its ceiling are not roofs, so the floor is open and the contents (knife, screens)
are what can make a cell a building.

**Buildings and UEs.** A cell is a building cell when its top surface (below an enclosure's ceiling) rises
more than a clearance (the UE height by default) above its local ground: a UE there would be inside an
object. UEs stand at local ground + ``grid.height_m``. On flat scenes at z = 0 (every OSM and procedural
scene, Sionna's city scenes) this is exactly the earlier rule "top surface above z_min + UE height".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.load import scene_bounds

#: Most surfaces followed down one column; columns stacked deeper than this are cut (their ground is then
#: the lowest surface reached), which no shipped scene comes near (<= 4 measured).
MAX_SURFACES_PER_COLUMN = 64
#: Decimals [m] to which ground and top heights are rounded (0.1 mm).
HEIGHT_DECIMALS = 4
#: Step below a surface before the column's ray is continued [m]; surfaces closer than this merge.
_CONTINUE_M = 1e-3
#: A surface whose normal has |n_z| above this faces up or down; below it is a wall grazed at its edge.
_FACING_NZ = 0.5
#: Tolerance of "at the scene's top" for an enclosure's ceiling [m].
_CEILING_TOL_M = 0.05
#: Cells per side of the coarse survey that decides whether a scene is an enclosure.
_SURVEY_CELLS = 32


@dataclass(frozen=True)
class CellGeometry:
    """Per-cell vertical structure of a scene on a grid (see the module docstring).

    Attributes
    ----------
    ground_m : [num_y, num_x], float64
        Local ground height: the lowest surface under each cell centre (filled where ``has_ground`` is False) [m].
    top_m : [num_y, num_x], float64
        Highest surface under each cell centre, an enclosure's ceiling excluded; ``ground_m`` where none [m].
    has_ground : [num_y, num_x], bool
        The cell's column meets an upward- or downward-facing surface (below an enclosure's ceiling); walls
        grazed at their edges do not count.
    building : [num_y, num_x], bool
        ``top_m > ground_m + clearance``.
    ue_z_m : [num_y, num_x], float64
        ``ground_m + grid.height_m``: where a UE of the cell stands [m].
    enclosure : bool
        The scene is the inside of a closed box (see the module docstring).
    """

    ground_m: np.ndarray
    top_m: np.ndarray
    has_ground: np.ndarray
    building: np.ndarray
    ue_z_m: np.ndarray
    enclosure: bool


def _column_surfaces(scene, x_m: np.ndarray, y_m: np.ndarray, top_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Heights and normals' z of every surface met by vertical rays down from ``top_m`` at ``(x, y)``.

    Output
    ------
    z_m : [MAX_SURFACES_PER_COLUMN, num_columns], float64, highest first; NaN beyond a column's last surface
    normal_z : [MAX_SURFACES_PER_COLUMN, num_columns], float64, NaN likewise
    """
    import mitsuba as mi

    num = len(x_m)
    z_m = np.full((MAX_SURFACES_PER_COLUMN, num), np.nan)
    normal_z = np.full((MAX_SURFACES_PER_COLUMN, num), np.nan)
    x32 = np.asarray(x_m, dtype=np.float32)
    y32 = np.asarray(y_m, dtype=np.float32)
    origin_z = np.full(num, top_m, dtype=np.float64)
    active = np.arange(num)
    for level in range(MAX_SURFACES_PER_COLUMN):
        if not len(active):
            break
        rays = mi.Ray3f(o=mi.Point3f(x32[active], y32[active], origin_z[active].astype(np.float32)),
                        d=mi.Vector3f(0.0, 0.0, -1.0))
        hits = scene.mi_scene.ray_intersect(rays)
        hit = np.array(hits.is_valid(), dtype=bool)
        # Height as origin - distance (in float64 from Mitsuba's float32 distance), as for the first surface
        # of the earlier single-ray query, so flat scenes give bit-identical heights.
        z_hit = origin_z[active] - np.array(hits.t, dtype=np.float64)
        columns = active[hit]
        z_m[level, columns] = z_hit[hit]
        normal_z[level, columns] = np.array(hits.n.z, dtype=np.float64)[hit]
        origin_z[columns] = z_hit[hit] - _CONTINUE_M
        active = columns
    return z_m, normal_z


def _lowest(z_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each column's lowest surface and whether it has one. ``z_m``: [levels, num_columns]."""
    present = np.isfinite(z_m)
    count = present.sum(axis=0)
    return np.maximum(count - 1, 0), count > 0


def is_enclosure(scene) -> bool:
    """Whether the scene is the inside of a closed box (Sionna's ``box`` family; see the module docstring).

    Decided on a ``32 x 32`` survey of the scene's footprint: among columns that meet a surface, most have a
    downward-facing lowest surface (the box's underside: no ground below) and an upward-facing top surface at
    the scene's top (the lid).
    """
    bounds = scene_bounds(scene)
    fractions = (np.arange(_SURVEY_CELLS) + 0.5) / _SURVEY_CELLS
    xx, yy = np.meshgrid(bounds.x_min + fractions * (bounds.x_max - bounds.x_min),
                         bounds.y_min + fractions * (bounds.y_max - bounds.y_min))
    z_m, normal_z = _column_surfaces(scene, xx.ravel(), yy.ravel(), bounds.z_max + 10.0)
    lowest, present = _lowest(z_m)
    if not present.any():
        return False
    columns = np.arange(z_m.shape[1])
    floor_faces_down = normal_z[lowest, columns] < -_FACING_NZ
    lid = (normal_z[0] > _FACING_NZ) & (np.abs(z_m[0] - bounds.z_max) < _CEILING_TOL_M)
    return bool(np.mean((floor_faces_down & lid)[present]) > 0.5)


def fill_from_nearest(values: np.ndarray, known: np.ndarray, default: float) -> np.ndarray:
    """``values`` with unknown cells set to the nearest known cell's value (``default`` if none is known).

    Input
    -----
    values : [num_y, num_x], float
    known : [num_y, num_x], bool
    default : float

    Output
    ------
    filled : [num_y, num_x], float
    """
    if known.all():
        return values
    if not known.any():
        return np.full_like(values, default)
    from scipy.ndimage import distance_transform_edt

    # indices of the nearest known cell for every cell: [2, num_y, num_x]
    _, (rows, cols) = distance_transform_edt(~known, return_indices=True)
    return values[rows, cols]


def cell_geometry(scene, grid: Grid, clearance_m: float | None = None, enclosure: bool | None = None) -> CellGeometry:
    """Local ground, top surface, building mask and UE height of every cell (see the module docstring).

    Input
    -----
    scene : sionna.rt.Scene
    grid : Grid
    clearance_m : float, optional
        A cell is a building cell when its top surface is more than this above its local ground [m];
        default ``grid.height_m`` (a UE there would be inside the object).
    enclosure : bool, optional
        Whether the scene is an enclosure; default :func:`is_enclosure` (pass it to save the survey when
        querying one scene many times).

    Output
    ------
    CellGeometry, arrays ``[num_y, num_x]``
    """
    clearance = float(grid.height_m if clearance_m is None else clearance_m)
    if not np.isfinite(clearance) or clearance < 0:
        raise CkmsimError(f"clearance_m must be a finite number >= 0. Received: clearance_m={clearance_m!r}")
    bounds = scene_bounds(scene)
    enclosure = is_enclosure(scene) if enclosure is None else bool(enclosure)
    # [num_y * num_x, 3]
    centers = grid.cell_centers_m().reshape(-1, 3)
    z_m, normal_z = _column_surfaces(scene, centers[:, 0], centers[:, 1], bounds.z_max + 10.0)
    if enclosure:
        # the lid (and anything flush with it) is the room's ceiling, not a roof
        z_m = np.where(z_m >= bounds.z_max - _CEILING_TOL_M, np.nan, z_m)
    # A wall grazed at its edge (vertical normal) can make a building but never the ground.
    ground_z = np.where(np.abs(normal_z) >= _FACING_NZ, z_m, np.nan)
    has_surface = np.isfinite(z_m).any(axis=0).reshape(grid.shape)
    has_ground = np.isfinite(ground_z).any(axis=0).reshape(grid.shape)
    with np.errstate(all="ignore"):
        lowest = np.nanmin(np.where(np.isfinite(ground_z).any(axis=0), ground_z, 0.0), axis=0)
        highest = np.nanmax(np.where(np.isfinite(z_m).any(axis=0), z_m, 0.0), axis=0)
    # Heights to 0.1 mm: float32 ray distances are good to ~1e-6 m per 100 m, and the rounding makes flat
    # ground at z = 0 exactly 0, so UEs stand exactly where they stood before local ground existed.
    ground = np.round(fill_from_nearest(lowest.reshape(grid.shape), has_ground, 0.0), HEIGHT_DECIMALS) + 0.0
    top = np.where(has_surface, np.maximum(np.round(highest.reshape(grid.shape), HEIGHT_DECIMALS), ground), ground)
    return CellGeometry(ground_m=ground, top_m=top, has_ground=has_ground, building=top > ground + clearance,
                        ue_z_m=ground + float(grid.height_m), enclosure=enclosure)


def surface_height_m(scene, grid: Grid) -> np.ndarray:
    """Height of the highest surface above each cell centre [m].

    One ray per cell is shot straight down from above the scene's bounding box; a ray that hits nothing
    (outside the ground plane) reports the scene's lowest z. An enclosure's lid counts (this is the raw top
    view; :func:`cell_geometry` is what masks and UEs use).

    Output
    ------
    height_m : [num_y, num_x], float64
    """
    import mitsuba as mi

    bounds = scene_bounds(scene)
    top = bounds.z_max + 10.0
    # [num_y * num_x, 3]
    centers = grid.cell_centers_m().reshape(-1, 3).astype(np.float32)
    origins = mi.Point3f(centers[:, 0], centers[:, 1], np.full(len(centers), top, dtype=np.float32))
    hits = scene.mi_scene.ray_intersect(mi.Ray3f(o=origins, d=mi.Vector3f(0.0, 0.0, -1.0)))
    distance = np.array(hits.t, dtype=np.float64)
    hit = np.array(hits.is_valid(), dtype=bool)
    height = np.where(hit, top - distance, bounds.z_min)
    return height.reshape(grid.shape)


def local_ground_m(scene, grid: Grid) -> np.ndarray:
    """Local ground height of every cell [m], ``[num_y, num_x]`` float64 (see :func:`cell_geometry`)."""
    return cell_geometry(scene, grid).ground_m


def building_mask(scene, grid: Grid) -> np.ndarray:
    """Cells whose top surface rises more than the UE height above the cell's local ground.

    A UE standing ``grid.height_m`` above the local ground would be inside an object (see
    :func:`cell_geometry`; on flat ground at z = 0 this is "top surface above ``grid.height_m``").

    Output
    ------
    building : [num_y, num_x], bool
    """
    return cell_geometry(scene, grid).building


def ue_positions_m(scene, grid: Grid) -> np.ndarray:
    """Where the UE of every cell stands: the cell centre at local ground + ``grid.height_m``.

    Output
    ------
    positions_m : [num_y, num_x, 3], float64 (x, y, z) [m]
    """
    return grid.cell_centers_m(cell_geometry(scene, grid).ground_m)


def roof_height_m(scene, x_m: float, y_m: float, radius_m: float, cell_size_m: float = 1.0,
                  enclosure: bool | None = None) -> float:
    """Highest surface within ``radius_m`` of ``(x_m, y_m)`` [m]: the local roofs a BS must clear.

    Sampled on a lattice of ``cell_size_m`` (and at the point itself); an enclosure's ceiling is excluded,
    so a BS placed from this stays inside a room scene.
    """
    for name, value in (("radius_m", radius_m), ("cell_size_m", cell_size_m)):
        if not np.isfinite(value) or value < (0 if name == "radius_m" else 1e-6):
            raise CkmsimError(f"{name} must be a finite number > 0. Received: {name}={value!r}")
    cells = 2 * int(np.ceil(radius_m / cell_size_m)) + 1
    grid = Grid(float(x_m), float(y_m), cells, cells, float(cell_size_m), 0.0)
    xx, yy = np.meshgrid(grid.x_m - x_m, grid.y_m - y_m)
    geometry = cell_geometry(scene, grid, enclosure=enclosure)
    near = xx ** 2 + yy ** 2 <= radius_m ** 2 + 1e-9
    return float(geometry.top_m[near].max())

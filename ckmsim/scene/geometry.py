"""Scene geometry queries: surface heights and building masks by casting one downward ray per cell
(zeros of a radio map are not a building mask)."""

from __future__ import annotations

import numpy as np

from ckmsim.maps.grid import Grid
from ckmsim.scene.load import scene_bounds


def surface_height_m(scene, grid: Grid) -> np.ndarray:
    """Height of the highest surface above each cell centre [m].

    One ray per cell is shot straight down from above the scene's bounding box; a ray that hits nothing
    (outside the ground plane) reports the scene's lowest z.

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


def building_mask(scene, grid: Grid) -> np.ndarray:
    """Cells whose top surface rises above the UE height over the ground.

    The ground is taken as the scene's lowest point (flat-ground scenes such as Sionna's built-ins and the
    OSM extrusions); a cell is a building cell when a UE at ``grid.height_m`` would be inside an object.

    Output
    ------
    building : [num_y, num_x], bool
    """
    ground_z = scene_bounds(scene).z_min
    return surface_height_m(scene, grid) > ground_z + grid.height_m

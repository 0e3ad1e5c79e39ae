"""Dense channel-gain maps with Sionna RT's RadioMapSolver.

The map is measured where the UEs stand: ``grid.height_m`` above the local ground. On flat ground (every cell
within ``FLAT_GROUND_TOL_M``) that is Sionna's planar radio map at ground + UE height; on terrain it is a
*measurement surface*: one horizontal square per cell at its own UE height, two triangles each (Sionna's
``MeshRadioMap`` bins per triangle, normalised by triangle area, so the mean of a cell's two triangles is the
cell average the planar map gives).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.settings import RayTracingSettings


#: Largest spread of the local ground over a grid that still counts as flat (planar radio map) [m].
FLAT_GROUND_TOL_M = 1e-3


def gain_map_db(scene, grid: Grid, settings: RayTracingSettings, ground_m: np.ndarray | None = None) -> np.ndarray:
    """Channel gain of every cell from the scene's single transmitter [dB].

    The RadioMapSolver averages the path gain over each cell's area (Monte Carlo over
    ``settings.radio_map_samples`` rays) at ``grid.height_m`` above the local ground; cells no ray reaches are
    clipped to ``GAIN_FLOOR_DB``.

    Input
    -----
    scene : sionna.rt.Scene with one transmitter (see :func:`ckmsim.raytrace.scene_setup.place_base_station`)
    grid : Grid
    settings : RayTracingSettings
    ground_m : [num_y, num_x], float, optional
        Local ground of each cell [m] (:func:`ckmsim.scene.geometry.cell_geometry`); default z = 0 everywhere.

    Output
    ------
    gain_db : [num_y, num_x], float64
    """
    # Dr.Jit evaluates lazily: the map must be read out inside the single-thread section.
    with _single_thread(settings.deterministic_radio_map):
        # [num_tx, num_y, num_x]
        path_gain = _solve_path_gain(scene, grid, settings, ground_m)
    if path_gain.shape != grid.shape:
        raise CkmsimError(f"RadioMapSolver returned {path_gain.shape} cells for a grid of {grid.shape}; "
                          f"(cell size {grid.cell_size_m} m)")
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(path_gain), GAIN_FLOOR_DB)


@contextmanager
def _single_thread(enabled: bool):
    """Run the enclosed Dr.Jit work on one CPU thread (see ``RayTracingSettings.deterministic_radio_map``)."""
    import drjit as dr

    if not enabled:
        yield
        return
    previous = dr.thread_count()
    dr.set_thread_count(1)
    try:
        yield
    finally:
        dr.set_thread_count(previous)


def _solve_path_gain(scene, grid: Grid, settings: RayTracingSettings, ground_m: np.ndarray | None) -> np.ndarray:
    """``[num_y, num_x]`` float64 linear path gain: planar map on flat ground, measurement surface otherwise."""
    ground = np.zeros(grid.shape) if ground_m is None else np.asarray(ground_m, dtype=np.float64)
    if ground.shape != grid.shape or not np.all(np.isfinite(ground)):
        raise CkmsimError(f"ground_m must be finite and of the grid's shape {grid.shape}. Received: {ground.shape}")
    if np.ptp(ground) <= FLAT_GROUND_TOL_M:
        # [num_tx, num_y, num_x]
        return np.array(_solve_radio_map(scene, grid, settings, float(ground.mean())).path_gain.numpy(),
                        dtype=np.float64)[0]
    import sionna.rt as rt

    surface = measurement_surface(grid, ground)
    radio_map = rt.RadioMapSolver()(
        scene, measurement_surface=surface, samples_per_tx=int(settings.radio_map_samples),
        max_depth=int(settings.max_depth), diffraction=settings.diffraction,
        edge_diffraction=settings.edge_diffraction, seed=int(settings.seed))
    # [num_tx, 2 * num_y * num_x] -> [num_y, num_x, 2 triangles] -> mean over the cell's two triangles
    per_triangle = np.array(radio_map.path_gain.numpy(), dtype=np.float64)[0]
    return per_triangle.reshape(grid.num_y, grid.num_x, 2).mean(axis=-1)


def measurement_surface(grid: Grid, ground_m: np.ndarray):
    """A Mitsuba mesh of one horizontal square per cell at ``ground_m + grid.height_m``.

    Faces ``2 k`` and ``2 k + 1`` are cell ``k`` in row-major ``(y, x)`` order.

    Input
    -----
    grid : Grid
    ground_m : [num_y, num_x], float [m]

    Output
    ------
    mitsuba.Mesh with ``4 num_y num_x`` vertices and ``2 num_y num_x`` faces
    """
    import mitsuba as mi

    half = 0.5 * float(grid.cell_size_m)
    # [num_y * num_x, 3]
    centers = grid.cell_centers_m(ground_m).reshape(-1, 3)
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    # [num_cells, 4 corners, 3]
    vertices = np.repeat(centers[:, None, :], 4, axis=1)
    vertices[:, :, :2] += corners[None]
    base = 4 * np.arange(len(centers))[:, None]
    # [num_cells, 2 triangles, 3 vertex indices], counter-clockwise seen from above (normal +z)
    faces = np.stack([base + np.array([0, 1, 2]), base + np.array([0, 2, 3])], axis=1)
    mesh = mi.Mesh("ckmsim-measurement-surface", vertex_count=vertices.shape[0] * 4,
                   face_count=faces.shape[0] * 2, has_vertex_normals=False, has_vertex_texcoords=False)
    params = mi.traverse(mesh)
    params["vertex_positions"] = mi.Float(vertices.reshape(-1).astype(np.float32))
    params["faces"] = mi.UInt(faces.reshape(-1).astype(np.uint32))
    params.update()
    return mesh


def _solve_radio_map(scene, grid: Grid, settings: RayTracingSettings, ground_z_m: float = 0.0):
    import mitsuba as mi
    import sionna.rt as rt

    width_x, width_y = grid.size_m
    # RadioMapSolver counts cells as ceil(size / cell_size) in float32, so 7 cells of 0.7 m become 8; a cell
    # larger by one part in a million keeps the count exact and changes the gains by ~1e-6 (cell-area norm).
    cell_m = float(grid.cell_size_m) * (1.0 + 1e-6)
    return rt.RadioMapSolver()(
        scene,
        center=mi.Point3f(float(grid.center_x_m), float(grid.center_y_m), float(ground_z_m + grid.height_m)),
        orientation=mi.Point3f(0.0, 0.0, 0.0),
        size=mi.Point2f(float(width_x), float(width_y)),
        cell_size=mi.Point2f(cell_m, cell_m),
        samples_per_tx=int(settings.radio_map_samples),
        max_depth=int(settings.max_depth),
        diffraction=settings.diffraction,
        edge_diffraction=settings.edge_diffraction,
        seed=int(settings.seed),
    )

"""Dense channel-gain maps with Sionna RT's RadioMapSolver."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.settings import RayTracingSettings


def gain_map_db(scene, grid: Grid, settings: RayTracingSettings) -> np.ndarray:
    """Channel gain of every cell from the scene's single transmitter [dB].

    The RadioMapSolver averages the path gain over each cell's area (Monte Carlo over
    ``settings.radio_map_samples`` rays); cells no ray reaches are clipped to ``GAIN_FLOOR_DB``.

    Input
    -----
    scene : sionna.rt.Scene with one transmitter (see :func:`ckmsim.raytrace.scene_setup.place_base_station`)
    grid : Grid
    settings : RayTracingSettings

    Output
    ------
    gain_db : [num_y, num_x], float64
    """
    # Dr.Jit evaluates lazily: the map must be read out inside the single-thread section.
    with _single_thread(settings.deterministic_radio_map):
        # [num_tx, num_y, num_x]
        path_gain = np.array(_solve_radio_map(scene, grid, settings).path_gain.numpy(), dtype=np.float64)[0]
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


def _solve_radio_map(scene, grid: Grid, settings: RayTracingSettings):
    import mitsuba as mi
    import sionna.rt as rt

    width_x, width_y = grid.size_m
    # RadioMapSolver counts cells as ceil(size / cell_size) in float32, so 7 cells of 0.7 m become 8; a cell
    # larger by one part in a million keeps the count exact and changes the gains by ~1e-6 (cell-area norm).
    cell_m = float(grid.cell_size_m) * (1.0 + 1e-6)
    return rt.RadioMapSolver()(
        scene,
        center=mi.Point3f(float(grid.center_x_m), float(grid.center_y_m), float(grid.height_m)),
        orientation=mi.Point3f(0.0, 0.0, 0.0),
        size=mi.Point2f(float(width_x), float(width_y)),
        cell_size=mi.Point2f(cell_m, cell_m),
        samples_per_tx=int(settings.radio_map_samples),
        max_depth=int(settings.max_depth),
        diffraction=settings.diffraction,
        edge_diffraction=settings.edge_diffraction,
        seed=int(settings.seed),
    )

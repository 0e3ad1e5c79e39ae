"""Top-view PNG preview of a scene: surface heights, transmitters and an optional radio-map overlay."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import cell_geometry
from ckmsim.scene.load import scene_bounds

_DEFAULT_CELLS = 512


def default_grid(scene, cells_long_side: int = _DEFAULT_CELLS, height_m: float = 1.5) -> Grid:
    """A grid covering the scene's x-y bounding box with ``cells_long_side`` cells on its longer side."""
    b = scene_bounds(scene)
    extent_x, extent_y = b.x_max - b.x_min, b.y_max - b.y_min
    cell = max(extent_x, extent_y) / cells_long_side
    if not cell > 0:
        raise CkmsimError(f"Scene has an empty x-y extent ({extent_x} m x {extent_y} m); nothing to preview")
    return Grid(center_x_m=(b.x_min + b.x_max) / 2, center_y_m=(b.y_min + b.y_max) / 2,
                num_x=max(1, int(round(extent_x / cell))), num_y=max(1, int(round(extent_y / cell))),
                cell_size_m=cell, height_m=height_m)


def _scene_transmitters(scene) -> list[tuple[str, tuple[float, float, float]]]:
    out = []
    for name, tx in getattr(scene, "transmitters", {}).items():
        pos = np.array(tx.position, dtype=np.float64).ravel()
        out.append((str(name), (float(pos[0]), float(pos[1]), float(pos[2]))))
    return out


def preview_png(scene, out_png, grid: Grid | None = None, radio_map_db=None, transmitters=None) -> Path:
    """Write a top-view PNG of ``scene`` to ``out_png``; returns its path.

    Input
    -----
    scene : sionna.rt.Scene
    out_png : str or Path
    grid : Grid, optional
        Raster for heights (and the overlay); default covers the scene bbox, ~512 cells on the longer side.
    radio_map_db : [num_y, num_x] array, optional
        Radio map [dB] on ``grid``, drawn semi-transparent over open cells (building cells left clear).
    transmitters : list of (x, y, z), optional
        Positions to mark [m]; default the scene's own transmitters.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_png = Path(out_png)
    folder = out_png.parent if str(out_png.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CkmsimError(f"Cannot write preview '{out_png}': folder '{folder}' does not exist or is not writable")
    if grid is None:
        grid = default_grid(scene)
    overlay = None
    if radio_map_db is not None:
        overlay = np.asarray(radio_map_db, dtype=np.float64)
        if overlay.shape != grid.shape:
            raise CkmsimError(f"radio_map_db has shape {overlay.shape}, but the grid's shape is {grid.shape} "
                              "(num_y, num_x)")
    if transmitters is None:
        labelled = _scene_transmitters(scene)
    else:
        labelled = [(f"tx{i}", tuple(float(v) for v in p)) for i, p in enumerate(transmitters)]

    geometry = cell_geometry(scene, grid)
    height = geometry.top_m
    extent = grid.bounds_m  # (x_min, x_max, y_min, y_max): origin="lower" keeps row 0 at y_min
    # A bare Agg figure: no pyplot state, no global backend switch.
    fig = Figure(figsize=(8, 7))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(height, origin="lower", extent=extent, cmap="gray", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="height [m]")
    if overlay is not None:
        shown = np.ma.masked_where(geometry.building | ~np.isfinite(overlay), overlay)
        # Cells no ray reaches sit at the -250 dB floor; scaling to them would flatten the rest of the map.
        covered = shown.compressed()[shown.compressed() > GAIN_FLOOR_DB]
        vmin = float(np.percentile(covered, 1)) if covered.size else None
        ov = ax.imshow(shown, origin="lower", extent=extent, cmap="viridis", alpha=0.6,
                       interpolation="nearest", vmin=vmin)
        fig.colorbar(ov, ax=ax, label="radio map [dB]")
    for name, (x, y, _z) in labelled:
        ax.plot(x, y, marker="^", color="red", markersize=10, markeredgecolor="black", linestyle="none")
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), color="red", fontsize=9)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title("Scene top view" + (" with radio map" if overlay is not None else ""))
    try:
        fig.savefig(out_png, dpi=100)
    except OSError as err:
        raise CkmsimError(f"Cannot write preview '{out_png}': {err}") from None
    return out_png

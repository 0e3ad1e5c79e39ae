"""Top-view PNG preview of a scene: surface heights, transmitters and an optional radio-map overlay."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.maps.plotting import cell_class_key, draw_map, no_path_cells
from ckmsim.scene.geometry import cell_geometry
from ckmsim.scene.load import scene_bounds

_DEFAULT_CELLS = 512
#: Dynamic range of the radio-map panel [dB]: gains more than this below the strongest covered cells share
#: the bottom colour (a radio map spans 150 dB, most of it in cells far beyond any link's reach).
RADIO_MAP_RANGE_DB = 80.0


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


def _radio_map_panel(fig, ax, radio_map_db, grid: Grid, building) -> None:
    """The radio map [dB] as an opaque colour map over the open cells, keyed by a colour bar in dB."""
    from matplotlib.colors import Normalize

    no_path = no_path_cells(radio_map_db) & ~building
    covered = radio_map_db[~building & ~no_path]
    vmax = float(np.percentile(covered, 99.5)) if covered.size else 0.0
    vmin = max(float(np.percentile(covered, 1)), vmax - RADIO_MAP_RANGE_DB) if covered.size else vmax - 1.0
    image = draw_map(ax, radio_map_db, grid, "viridis", Normalize(vmin, vmax), building, no_path)
    fig.colorbar(image, ax=ax, label="channel gain [dB]", extend="both", shrink=0.85)
    ax.set_title("Radio map of the transmitter")


def preview_png(scene, out_png, grid: Grid | None = None, radio_map_db=None, transmitters=None) -> Path:
    """Write the top-view PNG of :func:`preview_figure` to ``out_png``; returns its path."""
    out_png = Path(out_png)
    folder = out_png.parent if str(out_png.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CkmsimError(f"Cannot write preview '{out_png}': folder '{folder}' does not exist or is not writable")
    fig = preview_figure(scene, grid, radio_map_db, transmitters)
    try:
        fig.savefig(out_png, dpi=100)
    except OSError as err:
        raise CkmsimError(f"Cannot write preview '{out_png}': {err}") from None
    return out_png


def preview_figure(scene, grid: Grid | None = None, radio_map_db=None, transmitters=None):
    """Top view of ``scene``: surface heights, and the radio map beside them when one is given.

    Input
    -----
    scene : sionna.rt.Scene
    grid : Grid, optional
        Raster for heights (and the radio map); default covers the scene bbox, ~512 cells on the longer side.
    radio_map_db : [num_y, num_x] array, optional
        Radio map [dB] on ``grid``, drawn in a second panel: an opaque colour map over the open cells,
        buildings and cells no ray reaches (the -250 dB floor) in the colours of :mod:`ckmsim.maps.palette`,
        with a colour bar in dB and a key.
    transmitters : list of (x, y, z), optional
        Positions to mark [m]; default the scene's own transmitters.

    Output
    ------
    matplotlib Figure (a bare Agg figure: no pyplot state, no global backend switch)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
    panels = 1 if overlay is None else 2
    fig = Figure(figsize=(6.6 * panels, 6.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False, sharex=True, sharey=True)[0]
    extent = grid.bounds_m  # (x_min, x_max, y_min, y_max): origin="lower" keeps row 0 at y_min
    im = axes[0].imshow(geometry.top_m, origin="lower", extent=extent, cmap="gray", interpolation="nearest")
    fig.colorbar(im, ax=axes[0], label="surface height [m]", shrink=0.85)
    axes[0].set_title("Scene top view: surface heights")
    if overlay is not None:
        _radio_map_panel(fig, axes[1], overlay, grid, geometry.building)
    for ax in axes:
        for name, (x, y, _z) in labelled:
            ax.plot(x, y, marker="^", color="red", markersize=10, markeredgecolor="black", linestyle="none")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), color="red", fontsize=9,
                        fontweight="bold")
        ax.set_xlabel("x [m]")
        ax.set_ylabel("y [m]")
        ax.tick_params(labelsize=9)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    if overlay is not None:
        fig.legend(handles=cell_class_key(no_path=True, transmitter="transmitter"), loc="outside lower center",
                   ncol=3, fontsize=9, frameon=False)
    return fig

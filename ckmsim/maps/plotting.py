"""Drawing a map layer the one way every figure of the package draws it (:mod:`ckmsim.maps.palette`).

A map panel is two images on one axes: the *cell classes* (building, not observed, no path) in their own
colours, and on top the *values* of the other cells in a colour map; the value image is the one a colour bar
keys. ``ckmsim.eval.figures``, ``scene preview`` and ``dataset show`` draw with these functions, so a
building or a cell without a path looks the same in each of their PNGs.
"""

from __future__ import annotations

import matplotlib.colors
import matplotlib.lines
import matplotlib.patches
import numpy as np

from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.palette import BOOLEAN_COLORS, BUILDING_COLOR, NO_PATH_COLOR, NOT_OBSERVED_COLOR

#: Label of the value image of a map panel (the cell-class image under it is ``CELL_CLASSES_LABEL``).
VALUES_LABEL = "values"
CELL_CLASSES_LABEL = "cell classes"
#: Key entry of the cells without a path.
NO_PATH_LABEL = "no path (no ray; gain at the -250 dB floor)"
_CLASS_CMAP = matplotlib.colors.ListedColormap([BUILDING_COLOR, NO_PATH_COLOR, NOT_OBSERVED_COLOR])


def no_path_cells(gain_db) -> np.ndarray:
    """``[num_y, num_x]`` bool: cells at (or, for a spline's overshoot, below) the -250 dB floor, or NaN."""
    gain_db = np.asarray(gain_db, dtype=float)
    return ~np.isfinite(gain_db) | (gain_db <= GAIN_FLOOR_DB)


def draw_map(ax, values, grid, cmap, norm, building, no_path=None, not_observed=None):
    """One map panel: ``values`` in ``cmap`` under ``norm``, and under them the cell classes in their own
    colours (building, else not observed, else no path).

    Input
    -----
    ax : matplotlib Axes
    values : [num_y, num_x] float; NaN cells show the class colour (or the axes background)
    grid : Grid of the map (extent in metres, row 0 at ``y_min``)
    cmap, norm : colour map and norm of the values
    building, no_path, not_observed : [num_y, num_x] bool or None

    Output
    ------
    the value ``AxesImage`` (labelled ``VALUES_LABEL``), for a colour bar
    """
    extent = grid.bounds_m
    classes = np.full(grid.shape, np.nan)
    for code, mask in ((1.0, no_path), (2.0, not_observed), (0.0, building)):
        if mask is not None:
            classes[np.asarray(mask, dtype=bool)] = code
    ax.imshow(classes, origin="lower", extent=extent, cmap=_CLASS_CMAP, vmin=-0.5, vmax=2.5,
              interpolation="nearest", label=CELL_CLASSES_LABEL)
    shown = np.where(np.isnan(classes), np.asarray(values, dtype=float), np.nan)
    image = ax.imshow(shown, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest",
                      label=VALUES_LABEL)
    ax.tick_params(labelsize=7)
    return image


def boolean_map(ax, values, grid, labels, building=None, colorbar: bool = True, colors=BOOLEAN_COLORS):
    """A boolean layer as a two-colour map (``colors``, of False and True) with its key: a two-entry colour
    bar, or (``colorbar=False``) nothing, for the caller to place :func:`boolean_key` patches.

    ``labels`` are the names of (False, True), e.g. ``("NLoS", "LoS")``. Returns the colour bar, or the
    value image when ``colorbar`` is False.
    """
    cmap = matplotlib.colors.ListedColormap(list(colors))
    norm = matplotlib.colors.BoundaryNorm([-0.5, 0.5, 1.5], cmap.N)
    image = draw_map(ax, np.asarray(values, dtype=float), grid, cmap, norm,
                     np.zeros(grid.shape, bool) if building is None else building)
    if not colorbar:
        return image
    bar = ax.figure.colorbar(image, ax=ax, ticks=[0, 1], shrink=0.85)
    bar.ax.set_yticklabels(list(labels), fontsize=7)
    return bar


def boolean_key(labels, colors=BOOLEAN_COLORS) -> list:
    """Legend patches of a boolean layer's two colours, (False, True)."""
    return [matplotlib.patches.Patch(facecolor=color, edgecolor="0.3", label=label)
            for color, label in zip(colors, labels)]


def cell_class_key(no_path: bool = True, not_observed: bool = False, transmitter: str | None = None) -> list:
    """Legend handles of the cell classes a figure shows (building always), and of a transmitter marker
    (red triangle) named ``transmitter``."""
    entries = [(BUILDING_COLOR, "building")]
    entries += [(NO_PATH_COLOR, NO_PATH_LABEL)] if no_path else []
    entries += [(NOT_OBSERVED_COLOR, "not observed")] if not_observed else []
    handles = [matplotlib.patches.Patch(facecolor=color, edgecolor="0.3", label=label) for color, label in entries]
    if transmitter:
        handles.append(matplotlib.lines.Line2D([], [], marker="^", color="red", markeredgecolor="k", ls="none",
                                               label=transmitter))
    return handles

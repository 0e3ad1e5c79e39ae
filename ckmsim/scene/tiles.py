"""Cut a scene into square study-area tiles.

The scene's x-y bounding box is divided into non-overlapping ``tile_cells x tile_cells`` tiles that lie
entirely inside it, row-major from the ``(x_min, y_min)`` corner (``row`` along y, ``col`` along x).
Tiles with too little open (non-building) area are dropped: a study area needs streets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_fraction, is_finite_number, is_whole_number
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import building_mask
from ckmsim.scene.load import scene_bounds

# Tolerance [in tiles] so that an extent of exactly n tiles yields n despite float round-off.
_FIT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Tile:
    """One square tile of a scene.

    index : position in the row-major enumeration of all tiles that fit (dropped ones included)
    row, col : tile row (along y) and column (along x) from the scene's min corner
    grid : the tile's cell lattice
    """

    index: int
    row: int
    col: int
    grid: Grid

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """``(x_min, x_max, y_min, y_max)`` of the tile's outer edges [m]."""
        return self.grid.bounds_m


def _check_args(tile_cells, cell_size_m, ue_height_m, min_open_fraction) -> None:
    if not is_whole_number(tile_cells, minimum=1):
        raise CkmsimError(f"tile_cells must be a positive integer. Received: tile_cells={tile_cells!r}")
    if not (is_finite_number(cell_size_m) and cell_size_m > 0):
        raise CkmsimError(f"cell_size_m must be a finite number > 0. Received: cell_size_m={cell_size_m!r}")
    if not is_finite_number(ue_height_m):
        raise CkmsimError(f"ue_height_m must be a finite number. Received: ue_height_m={ue_height_m!r}")
    check_fraction(min_open_fraction, "min_open_fraction")


def tile_scene(scene, tile_cells: int = 128, cell_size_m: float = 2.0, ue_height_m: float = 1.5,
               min_open_fraction: float = 0.1) -> list[tuple[Tile, np.ndarray]]:
    """Cut the scene into square tiles and return the kept ones with their building masks.

    Input
    -----
    scene : sionna.rt.Scene
    tile_cells : int
        Cells per tile side.
    cell_size_m : float
        Cell side [m].
    ue_height_m : float
        Grid height above z = 0 [m] (also the building-mask threshold above ground).
    min_open_fraction : float in [0, 1]
        Tiles whose non-building cell fraction is below this are dropped.

    Output
    ------
    list of (tile, mask) with mask ``[tile_cells, tile_cells]``, bool (True = building cell)
    """
    _check_args(tile_cells, cell_size_m, ue_height_m, min_open_fraction)
    tile_cells = int(tile_cells)
    cell_size_m = float(cell_size_m)
    tile_m = tile_cells * cell_size_m
    b = scene_bounds(scene)
    extent_x, extent_y = b.x_max - b.x_min, b.y_max - b.y_min
    num_cols = int(math.floor(extent_x / tile_m + _FIT_TOLERANCE))
    num_rows = int(math.floor(extent_y / tile_m + _FIT_TOLERANCE))
    if num_cols < 1 or num_rows < 1:
        raise CkmsimError(
            f"Scene extent {extent_x:.1f} m x {extent_y:.1f} m (x in [{b.x_min:.1f}, {b.x_max:.1f}] m, "
            f"y in [{b.y_min:.1f}, {b.y_max:.1f}] m) is too small for one tile of {tile_m:.1f} m x {tile_m:.1f} m "
            f"(tile_cells={tile_cells}, cell_size_m={cell_size_m})")
    out = []
    for row in range(num_rows):
        for col in range(num_cols):
            grid = Grid(center_x_m=b.x_min + (col + 0.5) * tile_m, center_y_m=b.y_min + (row + 0.5) * tile_m,
                        num_x=tile_cells, num_y=tile_cells, cell_size_m=cell_size_m, height_m=float(ue_height_m))
            tile = Tile(index=row * num_cols + col, row=row, col=col, grid=grid)
            mask = building_mask(scene, grid)
            if 1.0 - float(mask.mean()) >= min_open_fraction:
                out.append((tile, mask))
    return out


def tiles_table(tiles_with_masks) -> list[dict]:
    """One dict per tile (index, row, col, x_min, x_max, y_min, y_max, building_fraction), for listing."""
    rows = []
    for tile, mask in tiles_with_masks:
        x0, x1, y0, y1 = tile.bounds_m
        rows.append({"index": tile.index, "row": tile.row, "col": tile.col, "x_min": x0, "x_max": x1,
                     "y_min": y0, "y_max": y1, "building_fraction": float(np.mean(mask))})
    return rows

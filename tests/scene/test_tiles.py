"""Scene tiling: non-overlapping tiles inside the bounds, masks from building_mask, open-area filter."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import math

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.scene.geometry import building_mask
from ckmsim.scene.load import load_scene, scene_bounds
from ckmsim.scene.procedural import CityConfig, write_city
from ckmsim.scene.tiles import Tile, tile_scene, tiles_table

TILE_CELLS, CELL = 16, 2.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return load_scene(str(write_city(CityConfig(size_m=128.0), 3, tmp_path_factory.mktemp("city"))))


@pytest.fixture(scope="module")
def all_tiles(scene):
    return tile_scene(scene, tile_cells=TILE_CELLS, cell_size_m=CELL, min_open_fraction=0.0)


def test_tiles_fit_count_and_do_not_overlap(scene, all_tiles):
    b = scene_bounds(scene)
    tile_m = TILE_CELLS * CELL
    expected = math.floor((b.x_max - b.x_min) / tile_m + 1e-9) * math.floor((b.y_max - b.y_min) / tile_m + 1e-9)
    assert expected == 16 and len(all_tiles) == expected
    boxes = []
    for tile, mask in all_tiles:
        assert isinstance(tile, Tile) and tile.grid.shape == (TILE_CELLS, TILE_CELLS) and mask.shape == tile.grid.shape
        x0, x1, y0, y1 = tile.bounds_m
        assert b.contains_grid(tile.grid)
        assert x1 - x0 == pytest.approx(tile_m) and y1 - y0 == pytest.approx(tile_m)
        boxes.append((x0, x1, y0, y1))
    for i, (a0, a1, a2, a3) in enumerate(boxes):
        for c0, c1, c2, c3 in boxes[i + 1:]:
            overlap_x = min(a1, c1) - max(a0, c0)
            overlap_y = min(a3, c3) - max(a2, c2)
            assert overlap_x <= 1e-9 or overlap_y <= 1e-9
    assert [t.index for t, _ in all_tiles] == list(range(16))
    first = all_tiles[0][0]
    assert (first.row, first.col) == (0, 0)
    assert first.bounds_m[0] == pytest.approx(b.x_min) and first.bounds_m[2] == pytest.approx(b.y_min)
    assert (all_tiles[1][0].row, all_tiles[1][0].col) == (0, 1)


def test_masks_equal_building_mask(scene, all_tiles):
    for tile, mask in all_tiles:
        np.testing.assert_array_equal(mask, building_mask(scene, tile.grid))
    assert any(mask.any() for _, mask in all_tiles)  # the city has buildings


def test_open_fraction_filter(scene, all_tiles):
    threshold = 0.8
    kept = tile_scene(scene, tile_cells=TILE_CELLS, cell_size_m=CELL, min_open_fraction=threshold)
    expected = [t.index for t, m in all_tiles if 1.0 - m.mean() >= threshold]
    assert [t.index for t, _ in kept] == expected
    assert len(kept) == len(all_tiles) - sum(1 for _, m in all_tiles if 1.0 - m.mean() < threshold)
    none_kept = tile_scene(scene, tile_cells=TILE_CELLS, cell_size_m=CELL, min_open_fraction=1.0)
    assert none_kept == [] or all(not m.any() for _, m in none_kept)
    assert len(none_kept) == sum(1 for _, m in all_tiles if not m.any())


def test_min_open_fraction_one_drops_all_built_tiles(scene):
    # Every tile of the city that contains any building is dropped; with a single tile covering the whole
    # city (which has buildings) nothing is left.
    assert tile_scene(scene, tile_cells=32, cell_size_m=4.0, min_open_fraction=1.0) == []


def test_too_large_tile_raises(scene):
    with pytest.raises(CkmsimError, match=r"too small.*256\.0 m"):
        tile_scene(scene, tile_cells=128, cell_size_m=2.0)


@pytest.mark.parametrize("kwargs, name", [
    ({"tile_cells": 0}, "tile_cells"), ({"tile_cells": 2.5}, "tile_cells"),
    ({"cell_size_m": -1.0}, "cell_size_m"), ({"cell_size_m": float("nan")}, "cell_size_m"),
    ({"ue_height_m": float("inf")}, "ue_height_m"), ({"min_open_fraction": 1.5}, "min_open_fraction"),
])
def test_bad_arguments_name_the_argument(scene, kwargs, name):
    with pytest.raises(CkmsimError, match=name):
        tile_scene(scene, **kwargs)


def test_tiles_table(all_tiles):
    table = tiles_table(all_tiles)
    assert len(table) == len(all_tiles)
    row = table[0]
    assert set(row) == {"index", "row", "col", "x_min", "x_max", "y_min", "y_max", "building_fraction"}
    tile, mask = all_tiles[0]
    assert (row["x_min"], row["x_max"], row["y_min"], row["y_max"]) == tile.bounds_m
    assert row["building_fraction"] == pytest.approx(mask.mean())

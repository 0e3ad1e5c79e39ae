"""Local ground on a toy terrain whose heights are known in closed form; flat scenes as before; rooms.

The terrain is the plane z = SLOPE x + OFFSET over x, y in [0, 40] m with one box building standing on it
(footprint x in [20, 28], y in [12, 20], from z = 0, under the slope, to z = ROOF); the grid reaches 4 m past
the terrain's x = 0 edge, where no surface lies under the cells.
"""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest
from shapely.geometry import Polygon

from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import (building_mask, cell_geometry, is_enclosure, local_ground_m, roof_height_m,
                                   surface_height_m, ue_positions_m)
from ckmsim.scene.load import load_scene, scene_bounds
from ckmsim.scene.writer import Building, write_scene_folder

SLOPE = 0.1
OFFSET = 2.0
ROOF = 14.0
FOOTPRINT = (20.0, 28.0, 12.0, 20.0)  # x0, x1, y0, y1
#: 22 x 20 cells of 2 m: x centres -3, -1, 1, ..., 39 (the first two off the terrain), y centres 1, ..., 39
GRID = Grid(center_x_m=18.0, center_y_m=20.0, num_x=22, num_y=20, cell_size_m=2.0, height_m=1.5)


def write_terrain_scene(folder, slope=SLOPE, offset=OFFSET, roof=ROOF, footprint=FOOTPRINT) -> str:
    """A Mitsuba XML of a sloped ground plane and one box building; returns its path."""
    import trimesh

    folder.mkdir(parents=True, exist_ok=True)
    ground = trimesh.Trimesh(vertices=[[0, 0, offset], [40, 0, offset + 40 * slope], [40, 40, offset + 40 * slope],
                                       [0, 40, offset]], faces=[[0, 1, 2], [0, 2, 3]], process=False)
    x0, x1, y0, y1 = footprint
    box = trimesh.creation.box(extents=[x1 - x0, y1 - y0, roof])
    box.apply_translation([(x0 + x1) / 2, (y0 + y1) / 2, roof / 2])
    ground.export(folder / "ground.ply")
    box.export(folder / "building.ply")
    shapes = "".join(
        f'<shape type="ply" id="{name}"><string name="filename" value="{name}.ply"/>'
        f'<boolean name="face_normals" value="true"/><ref id="mat-{material}" name="bsdf"/></shape>\n'
        for name, material in (("ground", "concrete"), ("building", "brick")))
    materials = "".join(f'<bsdf type="itu-radio-material" id="mat-{m}"><string name="type" value="{m}"/>'
                        f'<float name="thickness" value="0.1"/></bsdf>\n' for m in ("concrete", "brick"))
    xml = folder / "scene.xml"
    xml.write_text(f'<scene version="2.1.0">\n{materials}{shapes}</scene>\n')
    return str(xml)


@pytest.fixture(scope="module")
def terrain(tmp_path_factory):
    return load_scene(write_terrain_scene(tmp_path_factory.mktemp("terrain")))


def _closed_form(grid=GRID):
    """Ground, building mask and UE z of GRID on the toy terrain, from the geometry above."""
    x, y = np.meshgrid(grid.x_m, grid.y_m)
    on_terrain_x = np.clip(x, 1.0, None)  # cells off the terrain take the nearest terrain cell's ground (x = 1)
    ground = SLOPE * on_terrain_x + OFFSET
    x0, x1, y0, y1 = FOOTPRINT
    building = (x > x0) & (x < x1) & (y > y0) & (y < y1)
    return ground, building


def test_ground_mask_and_ue_height_follow_the_terrain(terrain):
    ground, building = _closed_form()
    geometry = cell_geometry(terrain, GRID)
    open_cells = ~building
    np.testing.assert_allclose(geometry.ground_m[open_cells], ground[open_cells], atol=1e-3)
    np.testing.assert_array_equal(geometry.building, building)
    np.testing.assert_allclose(geometry.top_m[building], ROOF, atol=1e-3)
    np.testing.assert_allclose(geometry.ue_z_m[open_cells], ground[open_cells] + GRID.height_m, atol=1e-3)
    # the two columns left of the terrain have nothing under them
    assert not geometry.has_ground[:, :2].any() and geometry.has_ground[:, 2:].all()
    assert not geometry.enclosure
    np.testing.assert_array_equal(building_mask(terrain, GRID), building)
    np.testing.assert_allclose(local_ground_m(terrain, GRID), geometry.ground_m)
    positions = ue_positions_m(terrain, GRID)
    np.testing.assert_allclose(positions[..., 2][open_cells], ground[open_cells] + GRID.height_m, atol=1e-3)
    np.testing.assert_allclose(positions[..., :2], GRID.cell_centers_m()[..., :2])


def test_ground_under_a_building_is_its_lowest_surface_and_clearance_decides(terrain):
    # the box reaches below the slope: its bottom (z = 0) is the lowest surface, 14 m under its roof
    _, building = _closed_form()
    geometry = cell_geometry(terrain, GRID)
    np.testing.assert_allclose(geometry.ground_m[building], 0.0, atol=1e-3)
    np.testing.assert_array_equal(cell_geometry(terrain, GRID, clearance_m=ROOF - 0.1).building, building)
    assert not cell_geometry(terrain, GRID, clearance_m=ROOF + 0.1).building.any()


def test_roof_height_is_the_highest_surface_around_the_point(terrain):
    # far from the building: the slope's highest point in the disc, at x + radius on the 1 m lattice
    assert roof_height_m(terrain, 5.0, 30.0, radius_m=3.0) == pytest.approx(SLOPE * 8.0 + OFFSET, abs=1e-3)
    # the disc reaches the building
    assert roof_height_m(terrain, 17.0, 16.0, radius_m=4.0) == pytest.approx(ROOF, abs=1e-3)


def test_flat_scene_gives_the_rule_of_flat_ground(tmp_path):
    """On flat ground at z = 0 the mask and UE heights are those of "top surface above z_min + UE height"."""
    courtyard = Polygon([(0, 0), (20, 0), (20, 20), (0, 20)], [[(6, 6), (14, 6), (14, 14), (6, 14)]])
    low_wall = Polygon([(24, 0), (26, 0), (26, 20), (24, 20)])  # 1 m high: lower than a UE
    buildings = [Building(courtyard, 12.0, "concrete"), Building(low_wall, 1.0, "brick")]
    scene = load_scene(str(write_scene_folder(buildings, tmp_path / "flat", ground_material="concrete")))
    grid = Grid(center_x_m=14.0, center_y_m=10.0, num_x=28, num_y=12, cell_size_m=1.0)
    geometry = cell_geometry(scene, grid)
    flat_rule = surface_height_m(scene, grid) > scene_bounds(scene).z_min + grid.height_m
    np.testing.assert_array_equal(geometry.building, flat_rule)
    np.testing.assert_array_equal(geometry.ground_m, 0.0)
    np.testing.assert_array_equal(ue_positions_m(scene, grid), grid.cell_centers_m())
    np.testing.assert_array_equal(grid.cell_centers_m()[..., 2], grid.height_m)


def test_room_scenes_are_open_inside_and_their_contents_are_not():
    box = load_scene("box")
    grid = Grid(0.0, 0.0, 16, 16, 0.5, 1.5)
    assert is_enclosure(box)
    geometry = cell_geometry(box, grid)
    assert not geometry.building.any()
    np.testing.assert_allclose(geometry.ground_m, 0.0, atol=1e-3)
    # the knife stands 1.8 m tall on the floor of box_knife: cells under it are blocked, the rest open
    knife = cell_geometry(load_scene("box_knife"), Grid(0.0, 0.0, 64, 64, 10 / 64, 1.5))
    assert knife.enclosure and 0 < knife.building.sum() < 0.2 * knife.building.size
    assert not is_enclosure(load_scene("simple_street_canyon"))


def test_grid_ground_argument_is_checked():
    from ckmsim.errors import CkmsimError

    with pytest.raises(CkmsimError, match="ground_m"):
        GRID.cell_centers_m(np.zeros((3, 3)))
    np.testing.assert_array_equal(GRID.cell_centers_m(2.0)[..., 2], 3.5)

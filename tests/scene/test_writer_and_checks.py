"""Scene folders written from footprints load in Sionna RT; broken XML fails naming file and element."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest
from shapely.geometry import Polygon

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import building_mask, surface_height_m
from ckmsim.scene.load import load_scene
from ckmsim.scene.writer import Building, write_scene_folder


def _two_buildings():
    courtyard = Polygon([(0, 0), (20, 0), (20, 20), (0, 20)], [[(6, 6), (14, 6), (14, 14), (6, 14)]])
    tower = Polygon([(30, 4), (38, 4), (38, 12), (30, 12)])
    return [Building(courtyard, 12.0, "concrete"), Building(tower, 30.0, "brick")]


def test_written_scene_loads_with_heights_and_mask(tmp_path):
    xml = write_scene_folder(_two_buildings(), tmp_path / "city", ground_material="concrete")
    scene = load_scene(str(xml))
    assert {o.radio_material.name for o in scene.objects.values()} == {"concrete", "brick"}  # Sionna drops the "mat-" id prefix
    grid = Grid(center_x_m=20.0, center_y_m=10.0, num_x=24, num_y=12, cell_size_m=2.0)
    height = surface_height_m(scene, grid)
    x, y = np.meshgrid(grid.x_m, grid.y_m)
    in_courtyard_ring = (x > 0) & (x < 20) & (y > 0) & (y < 20) & ~((x > 6) & (x < 14) & (y > 6) & (y < 14))
    in_tower = (x > 30) & (x < 38) & (y > 4) & (y < 12)
    np.testing.assert_allclose(height[in_courtyard_ring], 12.0, atol=1e-3)
    np.testing.assert_allclose(height[in_tower], 30.0, atol=1e-3)
    np.testing.assert_array_equal(building_mask(scene, grid), in_courtyard_ring | in_tower)


def test_unknown_material_rejected(tmp_path):
    with pytest.raises(CkmsimError, match="Unknown ITU material 'cheese'"):
        write_scene_folder([Building(Polygon([(0, 0), (5, 0), (5, 5)]), 10.0, "cheese")], tmp_path / "x")


def test_missing_mesh_named(tmp_path):
    xml = write_scene_folder(_two_buildings(), tmp_path / "city")
    (tmp_path / "city" / "meshes" / "ground.ply").unlink()
    with pytest.raises(CkmsimError, match='<shape id="ground"> refers to missing mesh file'):
        load_scene(str(xml))


def test_unknown_itu_type_named(tmp_path):
    xml = write_scene_folder(_two_buildings(), tmp_path / "city")
    xml.write_text(xml.read_text().replace('value="brick"', 'value="adamantium"'))
    with pytest.raises(CkmsimError, match='<bsdf id="mat-brick"> has unknown ITU type .adamantium.'):
        load_scene(str(xml))


def test_undefined_material_reference_named(tmp_path):
    xml = write_scene_folder(_two_buildings(), tmp_path / "city")
    xml.write_text(xml.read_text().replace('<ref id="mat-brick"', '<ref id="mat-nothing"'))
    with pytest.raises(CkmsimError, match="refers to undefined material 'mat-nothing'"):
        load_scene(str(xml))

"""The study-area picker on a toy layout whose open cells are known from the footprints alone.

Layout: flat ground over x in [0, 200], y in [0, 100] m; the western half (x < 100) is one 20 m block, the
eastern half is open. A window's open fraction is therefore the share of its cell centres east of x = 100.
"""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest
from shapely.geometry import Polygon

from ckmsim.errors import CkmsimError
from ckmsim.scene.load import load_scene, scene_bounds
from ckmsim.scene.study_area import (MIN_OPEN_FRACTION, default_bs_position_m, fitted_cell_size_m,
                                     pick_study_area)
from ckmsim.scene.writer import Building, write_scene_folder

WEST_BLOCK = Polygon([(0, 0), (100, 0), (100, 100), (0, 100)])


@pytest.fixture(scope="module")
def half_built(tmp_path_factory):
    xml = write_scene_folder([Building(WEST_BLOCK, 20.0, "concrete")], tmp_path_factory.mktemp("half") / "city",
                             ground_bounds_m=(0.0, 0.0, 200.0, 100.0))
    return load_scene(str(xml))


def _footprint_open_fraction(grid) -> float:
    """Open fraction of a grid on the half-built layout, from the cell centres' x alone."""
    x, _ = np.meshgrid(grid.x_m, grid.y_m)
    return float(np.mean(x > 100.0))


def _inside(scene, grid) -> bool:
    return scene_bounds(scene).contains_grid(grid)


def test_picked_area_qualifies_and_its_fraction_is_the_footprints(half_built):
    area = pick_study_area(half_built, "half", num_cells=16, cell_size_m=4.0, ue_height_m=1.5)
    assert _inside(half_built, area.grid) and area.grid.shape == (16, 16) and not area.cell_size_shrunk
    assert area.open_fraction == pytest.approx(_footprint_open_fraction(area.grid))
    assert area.open_fraction >= MIN_OPEN_FRACTION


def test_most_open_target_picks_the_open_half_and_the_bs_clears_nothing_there(half_built):
    area = pick_study_area(half_built, "half", 16, 4.0, 1.5, target_open_fraction=1.0)
    assert area.grid.bounds_m[0] >= 100.0 and area.open_fraction == 1.0
    # over 30 m from the block, nothing stands around the BS but the ground: it stands one mast above it
    x, y, z = default_bs_position_m(half_built, area.grid, mast_m=2.0)
    assert (x, y) == (area.grid.center_x_m, area.grid.center_y_m) and z == pytest.approx(2.0, abs=1e-3)


def test_bs_near_a_building_clears_its_roof(half_built):
    area = pick_study_area(half_built, "half", 16, 4.0, 1.5, preferred_center_m=(120.0, 50.0))
    assert (area.grid.center_x_m, area.grid.center_y_m) == (120.0, 50.0)
    assert default_bs_position_m(half_built, area.grid, mast_m=2.0)[2] == pytest.approx(22.0, abs=1e-3)


def test_a_preferred_centre_is_used_only_when_it_qualifies(half_built):
    built = pick_study_area(half_built, "half", 16, 4.0, 1.5, preferred_center_m=(40.0, 50.0))
    assert (built.grid.center_x_m, built.grid.center_y_m) != (40.0, 50.0)
    assert _footprint_open_fraction(built.grid) >= MIN_OPEN_FRACTION


def test_small_scene_shrinks_the_cells_to_fit(tmp_path):
    xml = write_scene_folder([], tmp_path / "yard", ground_bounds_m=(0.0, 0.0, 10.0, 6.0))
    scene = load_scene(str(xml))
    area = pick_study_area(scene, "yard", num_cells=16, cell_size_m=2.0, ue_height_m=1.5)
    assert area.cell_size_shrunk and area.grid.shape == (16, 16)
    assert area.grid.cell_size_m == 0.374 and _inside(scene, area.grid)  # 6 m / 16, 3 significant digits down
    assert area.open_fraction == 1.0
    assert fitted_cell_size_m(scene, 2, 2.0) == 2.0  # 4 m fits: unchanged


def test_no_qualifying_area_is_refused_naming_the_scene_and_the_reason(tmp_path):
    cover = Polygon([(0, 0), (80, 0), (80, 80), (0, 80)])
    xml = write_scene_folder([Building(cover, 10.0, "concrete")], tmp_path / "roof", ground_bounds_m=(0, 0, 80, 80))
    with pytest.raises(CkmsimError, match=r"scene 'roof-top'.*open cells") as err:
        pick_study_area(load_scene(str(xml)), "roof-top", 16, 2.0, 1.5)
    assert "--center" in str(err.value)


def test_quickstart_geometry_explicit_options_win(half_built, tmp_path):
    from ckmsim.eval.quickstart import QuickstartConfig, _study_geometry

    config = QuickstartConfig(scene="half", out=str(tmp_path), num_cells=16, cell_size_m=4.0, center_m=(40.0, 50.0),
                              bs_position_m=(10.0, 20.0, 30.0))
    grid, bs = _study_geometry(half_built, config)
    assert (grid.center_x_m, grid.center_y_m) == (40.0, 50.0) and bs == (10.0, 20.0, 30.0)
    picked, bs = _study_geometry(half_built, QuickstartConfig(scene="half", out=str(tmp_path), num_cells=16,
                                                               cell_size_m=4.0))
    assert _footprint_open_fraction(picked) >= MIN_OPEN_FRACTION
    assert bs[:2] == (picked.center_x_m, picked.center_y_m)

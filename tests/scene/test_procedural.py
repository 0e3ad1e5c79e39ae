"""Procedural cities: seeded, valid and non-overlapping footprints; written folders load and ray-trace."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import itertools
import json

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.grid import Grid
from ckmsim.scene.procedural import CityConfig, generate_city, generate_layout, write_city

CONFIG = CityConfig()


@pytest.fixture(scope="module")
def layout():
    return generate_layout(CONFIG, seed=7)


def _signature(buildings):
    return [(b.footprint.wkt, b.height_m, b.material) for b in buildings]


def test_same_seed_same_city_different_seed_different_city():
    first = generate_city(CONFIG, 3)
    assert _signature(first) == _signature(generate_city(CONFIG, 3))
    assert _signature(first) != _signature(generate_city(CONFIG, 4))


def test_footprints_valid_inside_disjoint_and_off_streets(layout):
    buildings = layout.buildings
    assert buildings
    low, high = CONFIG.height_range_m
    for building in buildings:
        assert building.footprint.is_valid
        assert building.footprint.area >= CONFIG.min_footprint_area_m2
        assert layout.area.buffer(1e-6).contains(building.footprint)
        assert low <= building.height_m <= high
        assert building.footprint.intersection(layout.streets).area < 1e-6
    for a, b in itertools.combinations(buildings, 2):
        assert a.footprint.intersection(b.footprint).area < 1e-6
    # Every shape kind shows up in a city of ~100 buildings.
    assert any(len(b.footprint.interiors) for b in buildings)
    assert {b.material for b in buildings} <= {"concrete", "brick", "glass"}


def test_blocks_and_plazas(layout):
    assert any(any(block.contains(b.footprint.representative_point()) for b in layout.buildings)
               for block in layout.blocks)
    for plaza in layout.plazas:
        assert all(plaza.intersection(b.footprint).area < 1e-6 for b in layout.buildings)
    everything_plaza = generate_layout(CityConfig(plaza_probability=1.0), seed=7)
    assert everything_plaza.buildings == [] and everything_plaza.plazas


def test_built_fraction_is_urban():
    for seed in range(3):
        buildings = generate_city(CONFIG, seed)
        fraction = shapely.unary_union([b.footprint for b in buildings]).area / CONFIG.size_m ** 2
        assert 0.15 <= fraction <= 0.7, (seed, fraction)


def test_uniform_heights_respect_range():
    config = CityConfig(height_distribution="uniform", height_range_m=(10.0, 12.0), height_median_m=11.0)
    heights = [b.height_m for b in generate_city(config, 1)]
    assert heights and min(heights) >= 10.0 and max(heights) <= 12.0


@pytest.mark.parametrize("field, value", [
    ("size_m", -5.0), ("size_m", float("nan")), ("street_width_m", (20.0, 10.0)), ("block_size_m", (0.0, 5.0)),
    ("block_size_m", 40.0), ("irregularity", 1.5), ("plaza_probability", -0.1), ("setback_m", (-1.0, 2.0)),
    ("height_range_m", (8.0, float("inf"))), ("height_median_m", 100.0), ("height_distribution", "normal"),
    ("shape_weights", (("triangle", 1.0),)), ("materials", ()), ("materials", (("cheese", 1.0),)),
    ("min_footprint_area_m2", -1.0),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(CkmsimError, match=f"{field}="):
        CityConfig(**{field: value})


def test_written_city_loads_matches_footprints_and_ray_traces(tmp_path):
    from ckmsim.raytrace.gain_map import gain_map_db
    from ckmsim.raytrace.scene_setup import place_base_station
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.geometry import building_mask
    from ckmsim.scene.load import load_scene

    seed = 11
    xml = write_city(CONFIG, seed, tmp_path / "city")
    info = json.loads((xml.parent / "scene.json").read_text())
    assert info["generator"] == "ckmsim.scene.procedural" and info["seed"] == seed
    assert info["ground_bounds_m"] == [-128.0, -128.0, 128.0, 128.0]
    scene = load_scene(str(xml))

    buildings = generate_city(CONFIG, seed)
    union = shapely.unary_union([b.footprint for b in buildings])
    grid = Grid(0, 0, 32, 32, 4.0)
    centers = grid.cell_centers_m()
    expected = np.array([[union.contains(Point(x, y)) for x, y, _ in row] for row in centers])
    mask = building_mask(scene, grid)
    assert expected.any() and (~expected).any()
    assert np.mean(mask == expected) >= 0.98

    settings = RayTracingSettings(radio_map_samples=10 ** 5, max_depth=1, diffraction=False, edge_diffraction=False)
    top = max(b.height_m for b in buildings)
    place_base_station(scene, (0.0, 0.0, top + 5.0), settings)
    gain = gain_map_db(scene, Grid(0, 0, 16, 16, 8.0), settings)
    assert gain.shape == (16, 16) and np.all(np.isfinite(gain))
    assert np.any(gain > GAIN_FLOOR_DB)

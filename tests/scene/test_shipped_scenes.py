"""The scenes under scenes/ load in Sionna RT and are reproducible from how they were made."""

import json
from pathlib import Path

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import pytest

from ckmsim.scene.load import load_scene
from ckmsim.scene.procedural import CityConfig, write_city

SCENES = Path(__file__).resolve().parents[2] / "scenes"


@pytest.mark.parametrize("name", ["city-s0", "city-s1", "city-s2", "crossroads-osm"])
def test_shipped_scene_loads(name):
    info = json.loads((SCENES / name / "scene.json").read_text())
    assert info["num_buildings"] > 0
    scene = load_scene(str(SCENES / name / "scene.xml"))
    assert scene.objects  # Sionna merges shapes of one material, so one object may hold all


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_procedural_scenes_rebuild_identically(seed, tmp_path):
    write_city(CityConfig(), seed, tmp_path / "city")
    for mesh in (SCENES / f"city-s{seed}" / "meshes").iterdir():
        assert (tmp_path / "city" / "meshes" / mesh.name).read_bytes() == mesh.read_bytes(), mesh.name

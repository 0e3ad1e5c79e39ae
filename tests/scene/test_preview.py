"""Scene preview PNG: written with and without a radio-map overlay; bad overlay shape / folder raise."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.load import load_scene
from ckmsim.scene.preview import preview_png
from ckmsim.scene.procedural import CityConfig, write_city

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GRID = Grid(center_x_m=0.0, center_y_m=0.0, num_x=64, num_y=48, cell_size_m=2.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return load_scene(str(write_city(CityConfig(size_m=128.0), 5, tmp_path_factory.mktemp("city"))))


def test_preview_default_grid(scene, tmp_path):
    out = preview_png(scene, tmp_path / "top.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_preview_with_overlay_and_transmitters(scene, tmp_path):
    rm = np.random.default_rng(0).uniform(-140, -60, GRID.shape)
    out = tmp_path / "overlay.png"
    preview_png(scene, out, grid=GRID, radio_map_db=rm, transmitters=[(0.0, 0.0, 30.0), (20.0, -10.0, 25.0)])
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 1000


def test_wrong_overlay_shape_raises(scene, tmp_path):
    with pytest.raises(CkmsimError, match="shape"):
        preview_png(scene, tmp_path / "bad.png", grid=GRID, radio_map_db=np.zeros((GRID.num_x, GRID.num_y)))
    assert not (tmp_path / "bad.png").exists()


def test_unwritable_folder_raises(scene, tmp_path):
    with pytest.raises(CkmsimError, match="folder"):
        preview_png(scene, tmp_path / "missing" / "x.png", grid=GRID)

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


def test_radio_map_is_opaque_over_open_cells_with_buildings_and_floor_in_their_colours(scene):
    import matplotlib.colors

    from ckmsim.maps.ckm import GAIN_FLOOR_DB
    from ckmsim.maps.palette import BUILDING_COLOR, NO_PATH_COLOR
    from ckmsim.maps.plotting import CELL_CLASSES_LABEL, VALUES_LABEL
    from ckmsim.scene.geometry import cell_geometry
    from ckmsim.scene.preview import preview_figure

    building = cell_geometry(scene, GRID).building
    assert building.any() and (~building).any()
    rm = np.random.default_rng(0).uniform(-140, -60, GRID.shape)
    floor = tuple(np.argwhere(~building)[0])
    rm[floor] = GAIN_FLOOR_DB
    fig = preview_figure(scene, GRID, radio_map_db=rm, transmitters=[(0.0, 0.0, 30.0)])
    heights, radio = [ax for ax in fig.axes if ax.get_title()]
    assert all((ax.get_xlabel(), ax.get_ylabel()) == ("x [m]", "y [m]") for ax in (heights, radio))
    (values,) = [im for im in radio.images if im.get_label() == VALUES_LABEL]
    (classes,) = [im for im in radio.images if im.get_label() == CELL_CLASSES_LABEL]
    assert values.get_alpha() is None  # opaque: the map is not washed out by what lies under it
    assert values.colorbar is not None and values.colorbar.ax.get_ylabel() == "channel gain [dB]"
    # the colour range spans the open cells' gains, not the -250 dB floor
    assert values.norm.vmin >= -141 and values.norm.vmax <= -59
    shown = values.get_array()
    assert np.ma.getmaskarray(shown)[building].all() and not np.ma.getmaskarray(shown)[~building].all()
    b_cell = tuple(np.argwhere(building)[0])
    def colour(cell):
        return classes.cmap(classes.norm(classes.get_array()[cell]))

    assert np.allclose(colour(b_cell), matplotlib.colors.to_rgba(BUILDING_COLOR))
    assert np.allclose(colour(floor), matplotlib.colors.to_rgba(NO_PATH_COLOR))
    key = {t.get_text() for legend in fig.legends for t in legend.get_texts()}
    assert {"building", "transmitter"} <= key

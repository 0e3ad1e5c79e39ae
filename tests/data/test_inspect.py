"""``dataset show``'s figure, checked on the matplotlib objects: physical titles with units, boolean layers in
two colours with a key, times of arrival in ns without an offset, one building colour, axes in metres."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from ckmsim.data.inspect import sample_figure, sample_png
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.palette import BUILDING_COLOR, NO_PATH_COLOR
from ckmsim.maps.plotting import CELL_CLASSES_LABEL, VALUES_LABEL

N = 12
GRID = Grid(center_x_m=-50.0, center_y_m=30.0, num_x=N, num_y=N, cell_size_m=4.0)
#: A cell where path 1 does not exist
ABSENT = (2, 9)


class _Store:
    """The part of :class:`~ckmsim.data.store.DatasetStore` that ``dataset show`` reads, over one sample."""

    def __init__(self, ckm, raw):
        self._ckm, self._raw = ckm, raw
        self.records = [{"id": "toy/tile000/tx00", "split": "train"}]

    def __len__(self):
        return 1

    def ckm(self, index):
        return self._ckm

    def sample(self, index):
        return self._raw


def _store(gain_only=False, csi=False):
    rows, cols = np.indices(GRID.shape)
    building = (rows >= 8) & (cols <= 3)
    gain = np.where(building, np.nan, -70.0 - 2.0 * rows)
    variables = {"gain_db": gain, "building": building}
    if not gain_only:
        # [2, N, N]
        path_gain = np.stack([gain - 1.0, gain - 12.0])
        path_gain[1][ABSENT] = GAIN_FLOOR_DB
        az = np.stack([np.degrees(np.arctan2(rows - 6.0, cols - 6.0))] * 2)
        toa = np.stack([1e-7 + 1e-9 * rows, 3e-7 + 1e-9 * cols])
        az[1][ABSENT] = toa[1][ABSENT] = np.nan
        variables.update(path_gain_db=path_gain, aoa_az_deg=az, aoa_el_deg=np.zeros_like(az), toa_s=toa,
                         los=cols > 6)
    ckm = make_ckm(GRID, variables, {"bs_position_m": [-50.0, 30.0, 12.0]})
    raw = xr.Dataset()
    if csi:
        # [ue, subcarrier, ue_ant, bs_ant]
        raw["h_dl"] = (("ue", "subcarrier", "ue_ant", "bs_ant"), np.ones((3, 8, 1, 4), complex))
    return _Store(ckm, raw)


def _panels(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def _image(ax, label=VALUES_LABEL):
    return next(im for im in ax.images if im.get_label() == label)


def _colour_at(ax, cell, label):
    image = _image(ax, label)
    value = image.get_array()[cell]
    return None if np.ma.is_masked(value) else image.cmap(image.norm(value))


@pytest.fixture(scope="module")
def figure():
    fig = sample_figure(_store(csi=True), 0)
    fig.canvas.draw()  # colour-bar offsets are set at draw time
    yield fig
    plt.close(fig)


def test_titles_are_physical_with_units(figure):
    titles = set(_panels(figure))
    assert {"Channel gain [dB]", "Line of sight", "Building", "Path gain [dB], path 0", "Path exists, path 1",
            "AoA azimuth [deg], path 1", "Time of arrival [ns], path 0", "Downlink CSI magnitude [dB]"} <= titles
    assert not any(name in title for title in titles for name in ("gain_db", "aoa_az_deg", "toa_s", "los"))


def test_every_map_panel_is_in_metres_with_a_colour_bar(figure):
    maps = [ax for ax in _panels(figure).values() if any(im.get_label() == VALUES_LABEL for im in ax.images)]
    assert len(maps) == 3 + 2 * 5  # gain, LoS, building; per path: gain, exists, AoA az / el, ToA
    for ax in maps:
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x [m]", "y [m]")
        assert _image(ax).colorbar is not None, ax.get_title()


def test_toa_is_in_nanoseconds_without_an_offset(figure):
    bar = _image(_panels(figure)["Time of arrival [ns], path 0"]).colorbar
    assert bar.ax.yaxis.get_offset_text().get_text() == ""
    ticks = bar.get_ticks()
    assert 100 <= ticks.max() <= 120  # 100 ns + 1 ns per row


def test_boolean_layers_are_two_colour_maps_with_a_key(figure):
    panels = _panels(figure)
    for title, labels in (("Line of sight", ["NLoS", "LoS"]), ("Building", ["open", "building"]),
                          ("Path exists, path 1", ["no path", "path"])):
        image = _image(panels[title])
        assert image.cmap.N == 2, title
        assert [t.get_text() for t in image.colorbar.ax.get_yticklabels()] == labels
    exists = _image(panels["Path exists, path 1"]).get_array()
    assert exists[ABSENT] == 0 and exists[0, 0] == 1


def test_one_building_colour_and_no_path_cells_in_their_own(figure):
    panels = _panels(figure)
    building_cell, open_cell = (10, 1), (1, 1)
    building = matplotlib.colors.to_rgba(BUILDING_COLOR)
    # the building layer's own "building" colour is the building colour of every other map
    assert np.allclose(_colour_at(panels["Building"], building_cell, VALUES_LABEL), building)
    for title in ("Channel gain [dB]", "AoA azimuth [deg], path 0", "Line of sight"):
        assert np.allclose(_colour_at(panels[title], building_cell, CELL_CLASSES_LABEL), building)
        assert _colour_at(panels[title], open_cell, CELL_CLASSES_LABEL) is None
    for title in ("AoA azimuth [deg], path 1", "Time of arrival [ns], path 1", "Path gain [dB], path 1"):
        assert np.allclose(_colour_at(panels[title], ABSENT, CELL_CLASSES_LABEL),
                           matplotlib.colors.to_rgba(NO_PATH_COLOR))
    key = {t.get_text() for legend in figure.legends for t in legend.get_texts()}
    assert "building" in key and any(k.startswith("no path") for k in key)


def test_gain_only_sample_shows_gain_and_building(tmp_path):
    store = _store(gain_only=True)
    fig = sample_figure(store, 0)
    try:
        assert set(_panels(fig)) == {"Channel gain [dB]", "Building"}
    finally:
        plt.close(fig)
    png = sample_png(store, 0, tmp_path / "show" / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

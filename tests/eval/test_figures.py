"""Figures, checked on the matplotlib objects: one row per layer, a colour bar for every map panel, axes in
metres, cell classes (building / no path / not observed) in their own colours with a key, wrapped azimuth
errors, one colour per method across figures, boolean layers in two colours, no overlapping text labels."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import matplotlib
import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pytest

from ckmsim.baselines.interpolation import Bicubic
from ckmsim.eval.figures import (CELL_CLASSES_LABEL, VALUES_LABEL, rate_cdfs_figure, rate_vs_map_error_figure,
                                 sweep_figure, task_maps_figure, ue_split_figure)
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.maps.palette import (BOOLEAN_COLORS, BUILDING_COLOR, KNOWN_METHODS, NO_PATH_COLOR, NOT_OBSERVED_COLOR,
                                 method_color, task_linestyle, task_marker)

N = 16
GRID = Grid(center_x_m=10.0, center_y_m=-4.0, num_x=N, num_y=N, cell_size_m=2.0)
#: A cell the truth reaches with no ray (gain at the floor), and a cell whose prediction is 350 deg off
FLOOR_CELL = (3, 11)
WRAP_CELL = (7, 3)


@pytest.fixture(scope="module")
def truth():
    rows, cols = np.indices(GRID.shape)
    building = np.zeros(GRID.shape, bool)
    building[9:13, 5:9] = True
    gain = -80.0 - 1.5 * rows - 0.8 * cols
    gain[FLOOR_CELL] = GAIN_FLOOR_DB
    gain[building] = np.nan
    # [1, N, N]: one path
    path_gain = gain[None] - 1.0
    path_gain[0][FLOOR_CELL] = GAIN_FLOOR_DB
    az = np.degrees(np.arctan2(rows - 8.0, cols - 8.0))[None]
    az[0][building | (np.indices(GRID.shape)[0] == FLOOR_CELL[0]) & (cols == FLOOR_CELL[1])] = np.nan
    return make_ckm(GRID, {"gain_db": gain, "path_gain_db": path_gain, "aoa_az_deg": az, "los": cols > rows,
                           "building": building}, {"scene": "toy", "bs_position_m": [10.0, -4.0, 20.0]})


@pytest.fixture(scope="module")
def observation(truth):
    return Degradation([Subsample(2)], seed=0)(truth)


@pytest.fixture(scope="module")
def predictions(truth, observation):
    bicubic = Bicubic().predict(observation)
    shifted = bicubic.copy(deep=True)
    # 350 deg off at one cell: the same direction as 10 deg off
    shifted["aoa_az_deg"].values[0][WRAP_CELL] = truth["aoa_az_deg"].values[0][WRAP_CELL] + 350.0
    gain_only = make_ckm(GRID, {"gain_db": bicubic["gain_db"].values, "building": truth["building"].values})
    return {"bicubic": bicubic, "shifted": shifted, "gain_only": gain_only}


def _map_axes(subfig):
    """The axes of a subfigure that draw a map (a value image), with that image."""
    out = []
    for ax in subfig.axes:
        images = [im for im in ax.images if im.get_label() == VALUES_LABEL]
        if images:
            out.append((ax, images[0]))
    return out


def _class_colour(ax, cell):
    """RGBA of the cell-class image at ``cell`` (None where the cell shows its value)."""
    (classes,) = [im for im in ax.images if im.get_label() == CELL_CLASSES_LABEL]
    code = classes.get_array()[cell]
    return None if np.ma.is_masked(code) or np.isnan(code) else classes.cmap(classes.norm(code))


@pytest.fixture(scope="module")
def maps_figure(truth, observation, predictions):
    fig = task_maps_figure(truth, observation, predictions)
    yield fig
    plt.close(fig)


def test_rows_are_layers_and_columns_are_methods(maps_figure):
    rows = maps_figure.subfigs
    assert [r.get_suptitle().split(" [")[0] for r in rows] == ["Channel gain", "|gain error|",
                                                                "Strongest-path AoA azimuth", "|AoA azimuth error|"]
    titles = [[ax.get_title() for ax, _ in _map_axes(r)] for r in rows]
    assert titles[0][0] == "ground truth" and titles[0][1].startswith("observed")
    assert titles[0][2:] == ["bicubic", "shifted", "gain_only"]
    assert titles[1][1:] == ["bicubic", "shifted", "gain_only"]  # after the truth's LoS map
    # the gain-only method has no angles: its azimuth panels say so instead of drawing a map
    assert titles[2][2:] == ["bicubic", "shifted"] and titles[3][1:] == ["bicubic", "shifted"]
    # the error rows start with the truth's LoS map and the lattice the task observed
    assert titles[1][0].endswith("LoS / NLoS") and titles[3][0] == "cells the task observed"
    assert any("no angles predicted" in t.get_text() for ax in rows[2].axes for t in ax.texts)


def test_every_map_panel_has_a_colour_bar_shared_along_its_row(maps_figure):
    for row in maps_figure.subfigs:
        panels = _map_axes(row)
        bars = [image.colorbar for _, image in panels if image.colorbar is not None]
        values = [(ax, image) for ax, image in panels if len(image.cmap.colors if hasattr(image.cmap, "colors")
                                                                else []) != 2]
        assert bars, row.get_suptitle()
        for ax, image in values:
            # one norm per row: the row's colour bar is the key of every panel in it
            assert any(image.norm is bar.mappable.norm for bar in bars), (row.get_suptitle(), ax.get_title())
        limits = {(image.norm.vmin, image.norm.vmax) for _, image in values}
        assert len(limits) == 1, row.get_suptitle()


def test_axes_are_labelled_in_metres(maps_figure):
    for row in maps_figure.subfigs:
        panels = _map_axes(row)
        assert all(ax.get_xlabel() == "x [m]" for ax, _ in panels)
        assert panels[0][0].get_ylabel() == "y [m]"
        # the extent is the grid's, in metres
        x0, x1, y0, y1 = GRID.bounds_m
        assert np.allclose(panels[0][1].get_extent(), (x0, x1, y0, y1))


def test_azimuth_row_is_cyclic_in_degrees(maps_figure):
    row = maps_figure.subfigs[2]
    (_, image), *_ = _map_axes(row)
    assert (image.norm.vmin, image.norm.vmax) == (-180.0, 180.0)
    # a cyclic colour map: -180 and +180 deg get the same colour
    assert np.allclose(image.cmap(0.0), image.cmap(1.0), atol=0.02)
    bar = next(im.colorbar for _, im in _map_axes(row) if im.colorbar is not None)
    assert "[deg]" in bar.ax.get_ylabel()


def test_floor_building_and_unobserved_cells_have_their_own_colours(maps_figure, truth, observation):
    gain_row = maps_figure.subfigs[0]
    (truth_ax, truth_image), (observed_ax, _), *_ = _map_axes(gain_row)
    assert np.allclose(_class_colour(truth_ax, FLOOR_CELL), matplotlib.colors.to_rgba(NO_PATH_COLOR))
    assert np.ma.is_masked(truth_image.get_array()[FLOOR_CELL])  # not drawn in the value colours
    building_cell = tuple(np.argwhere(truth["building"].values)[0])
    assert np.allclose(_class_colour(truth_ax, building_cell), matplotlib.colors.to_rgba(BUILDING_COLOR))
    open_cell = (1, 1)
    assert _class_colour(truth_ax, open_cell) is None
    unobserved = tuple(np.argwhere(~observation.observed & ~truth["building"].values)[0])
    assert np.allclose(_class_colour(observed_ax, unobserved), matplotlib.colors.to_rgba(NOT_OBSERVED_COLOR))
    key = {text.get_text() for legend in maps_figure.legends for text in legend.get_texts()}
    assert {"building", "not observed", "LoS", "NLoS"} <= key
    assert any(label.startswith("no path") and "-250 dB" in label for label in key)


def test_azimuth_error_is_wrapped(maps_figure, truth, predictions):
    error_row = maps_figure.subfigs[3]
    panels = {ax.get_title(): image for ax, image in _map_axes(error_row)}
    assert panels["shifted"].get_array()[WRAP_CELL] == pytest.approx(10.0, abs=1e-3)
    assert np.nanmax(panels["shifted"].get_array().filled(np.nan)) <= 180.0


def test_los_is_a_two_colour_map(maps_figure):
    los_ax, los_image = _map_axes(maps_figure.subfigs[1])[0]
    assert "LoS" in los_ax.get_title()
    assert list(los_image.cmap.colors) == list(BOOLEAN_COLORS)
    assert set(np.unique(los_image.get_array().compressed())) == {0.0, 1.0}


def test_many_methods_wrap_into_blocks_of_layer_rows(truth, observation, predictions):
    many = {f"m{i}": predictions["bicubic"] for i in range(5)}
    fig = task_maps_figure(truth, observation, many, max_columns=5)
    try:
        # 5 methods, at most 3 per block: two blocks of the four layer rows
        assert len(fig.subfigs) == 8
        assert [r.get_suptitle() for r in fig.subfigs[:4]] == [r.get_suptitle() for r in fig.subfigs[4:]]
        methods = [ax.get_title() for r in fig.subfigs[::4] for ax, _ in _map_axes(r)[2:]]
        assert methods == [f"m{i}" for i in range(5)]
    finally:
        plt.close(fig)


def test_method_colours_are_distinct_and_stable():
    colours = [matplotlib.colors.to_hex(method_color(name)) for name in KNOWN_METHODS]
    assert len(set(colours)) == len(colours)
    # none is a reference's black or grey
    assert all(len({c[1:3], c[3:5], c[5:7]}) > 1 for c in colours)
    assert method_color("my_median_filter") == method_color("my_median_filter")
    assert method_color("bicubic sr_x2") == method_color("bicubic")
    assert task_linestyle("sr_x2") != task_linestyle("sr_x4") and task_marker("sr_x2") != task_marker("sr_x4")


def _line_colours(fig):
    return {line.get_label(): matplotlib.colors.to_hex(line.get_color()) for ax in fig.axes for line in ax.lines}


def test_a_method_has_the_same_colour_in_every_figure(rng):
    rates = {name: rng.uniform(0, 10, 20) for name in ("bilinear", "bicubic", "kriging")}
    cdf = rate_cdfs_figure({"task sr_x2": (rng.uniform(0, 10, 20), rng.uniform(0, 10, 20), None, rates),
                            "task sr_x4": (rng.uniform(0, 10, 20), rng.uniform(0, 10, 20), None, rates)})
    curves = {"perfect_csi": [1, 2], "ground_truth_map": [1, 2],
              **{f"{name} {task}": [1, 2] for name in rates for task in ("sr_x2", "sr_x4")}}
    sweep = sweep_figure([8, 16], curves, "BS antennas", "toy")
    try:
        cdf_colours, sweep_lines = _line_colours(cdf), [ln for ax in sweep.axes for ln in ax.lines]
        for name in rates:
            assert cdf_colours[name] == matplotlib.colors.to_hex(method_color(name))
        # 2 panels x (bound, truth map, 3 methods) lines, each method in one colour in both panels
        assert len({(ln.get_label(), matplotlib.colors.to_hex(ln.get_color())) for ax in cdf.axes
                    for ln in ax.lines}) == 5
        drawn = [(matplotlib.colors.to_hex(ln.get_color()), ln.get_linestyle()) for ln in sweep_lines[2:]]
        expected = [(matplotlib.colors.to_hex(method_color(n)), matplotlib.lines.Line2D([], [], ls=task_linestyle(t))
                     .get_linestyle()) for n in rates for t in ("sr_x2", "sr_x4")]
        assert drawn == expected
        assert len(set(drawn)) == 6  # each (method, task) its own colour-and-style
        assert cdf.legends and sweep.legends  # a key beside the panels
    finally:
        plt.close(cdf)
        plt.close(sweep)


def _study(label, offset):
    def record(name, task, rmse):
        return {"name": name, "task": task, "map": {"covered_gain_rmse_db": rmse},
                "rate": {"fraction_of_perfect_csi": 0.9 - offset}, "rate_adaptation": {"fraction_of_perfect_csi": 0.7},
                "rate_csi_beamforming": None if name == "umi_3gpp" else {"fraction_of_perfect_csi": 0.8}}
    return {"label": label, "methods": [record("bicubic", "sr_x4", 8.0 + offset), record("kriging", "sr_x4", 8.1),
                                        record("bicubic", "box4", 9.0), record("umi_3gpp", "sr_x4", 28.0)]}


def test_rate_vs_map_error_has_a_key_and_no_text_labels():
    fig = rate_vs_map_error_figure([_study("munich", 0.0), _study("city", 0.05)])
    try:
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title() for ax in panels] == ["beam selection", "link adaptation", "CSI beamforming"]
        assert all(not ax.texts for ax in panels)  # no annotation to overlap
        points = [ln for ln in panels[0].lines]
        assert len(points) == 8
        by_point = {(ln.get_xdata()[0], ln.get_ydata()[0]): ln for ln in points}
        first = by_point[(8.0, 90.0)]
        assert matplotlib.colors.to_hex(first.get_color()) == matplotlib.colors.to_hex(method_color("bicubic"))
        assert first.get_marker() == task_marker("sr_x4") and first.get_fillstyle() == "full"
        second_scene = [ln for ln in points if ln.get_fillstyle() == "none"]
        assert len(second_scene) == 4
        key = {text.get_text() for legend in fig.legends for text in legend.get_texts()}
        assert {"bicubic", "kriging", "umi_3gpp", "task sr_x4", "task box4", "scene munich", "scene city"} <= key
        assert "marker: task" in fig.legends[0].get_title().get_text()
    finally:
        plt.close(fig)


def test_ue_split_has_labelled_axes_and_a_key(truth):
    from ckmsim.eval.scoring import UeSets

    rows, cols = np.nonzero(~truth["building"].values)
    num = rows.size
    test = np.arange(num) % 3 != 0
    sets = UeSets(test=test, held_out=test & (np.arange(num) % 2 == 0), calibration=~test)
    fig = ue_split_figure(truth, (rows, cols), {"sr_x2": sets})
    try:
        (ax,) = fig.axes
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x [m]", "y [m]")
        key = {text.get_text() for legend in fig.legends for text in legend.get_texts()}
        assert "building" in key and any("headline" in k for k in key)
    finally:
        plt.close(fig)


def test_gain_only_truth_has_the_two_gain_rows(truth):
    gain_only = make_ckm(GRID, {"gain_db": truth["gain_db"].values, "building": truth["building"].values})
    observation = Degradation([Subsample(2)], seed=0)(gain_only)
    fig = task_maps_figure(gain_only, observation, {"bicubic": Bicubic().predict(observation)})
    try:
        assert [r.get_suptitle().split(" [")[0] for r in fig.subfigs] == ["Channel gain", "|gain error|"]
        # no LoS layer: the error row starts with the observed lattice
        assert [ax.get_title() for ax, _ in _map_axes(fig.subfigs[1])] == ["cells the task observed", "bicubic"]
    finally:
        plt.close(fig)


def test_a_task_without_methods_draws_truth_and_observation(truth, observation):
    fig = task_maps_figure(truth, observation, {})
    try:
        assert [ax.get_title() for ax, _ in _map_axes(fig.subfigs[0])][0] == "ground truth"
        assert len(fig.subfigs) == 4
    finally:
        plt.close(fig)

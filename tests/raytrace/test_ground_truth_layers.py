"""The gain layer against closed-form line-of-sight truth on a stepped terrain; paths and gain agree.

Scene: one open terrain sheet, z = 0 for x < 20 m and z = STEP for x > 20 m (a vertical riser at x = 20), over
y in [0, 40] m. With ``max_depth = 0`` the only path is the line of sight, whose power gain between isotropic
antennas is :math:`(\\lambda / 4 \\pi d)^2`; it exists unless the riser cuts the segment from the BS to the UE.
"""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.gain_map import gain_map_db
from ckmsim.raytrace.ground_truth import trace_ground_truth
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.load import load_scene

STEP = 3.0
BS = (30.0, 20.0, 10.0)
#: 20 x 10 cells of 2 m: x centres 1, 3, ..., 39, y centres 11, ..., 29
GRID = Grid(center_x_m=20.0, center_y_m=20.0, num_x=20, num_y=10, cell_size_m=2.0, height_m=1.5)
LOS_ONLY = RayTracingSettings(max_depth=0, diffraction=False, edge_diffraction=False, path_samples=10**4,
                              radio_map_samples=10**5, receivers_per_call=200, seed=1)


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    import trimesh

    folder = tmp_path_factory.mktemp("stepped")
    vertices = [[0, 0, 0], [20, 0, 0], [20, 40, 0], [0, 40, 0],                 # lower terrace
                [20, 0, STEP], [40, 0, STEP], [40, 40, STEP], [20, 40, STEP]]  # upper terrace
    faces = [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [1, 4, 7], [1, 7, 2]]  # the last two: the riser
    trimesh.Trimesh(vertices=vertices, faces=faces, process=False).export(folder / "terrain.ply")
    xml = folder / "scene.xml"
    xml.write_text('<scene version="2.1.0">\n'
                   '<bsdf type="itu-radio-material" id="mat-concrete"><string name="type" value="concrete"/>'
                   '<float name="thickness" value="0.1"/></bsdf>\n'
                   '<shape type="ply" id="terrain"><string name="filename" value="terrain.ply"/>'
                   '<boolean name="face_normals" value="true"/><ref id="mat-concrete" name="bsdf"/></shape>\n'
                   '</scene>\n')
    return load_scene(str(xml))


def _closed_form():
    """UE z, line-of-sight gain [dB] and visibility of every cell of GRID."""
    x, y = np.meshgrid(GRID.x_m, GRID.y_m)
    ue_z = np.where(x > 20.0, STEP, 0.0) + GRID.height_m
    distance = np.sqrt((x - BS[0]) ** 2 + (y - BS[1]) ** 2 + (ue_z - BS[2]) ** 2)
    wavelength = 299792458.0 / LOS_ONLY.frequency_hz
    gain_db = 20.0 * np.log10(wavelength / (4.0 * np.pi * distance))
    # height of the BS-UE segment where it crosses the riser plane x = 20 (UEs below the step only)
    t = (20.0 - x) / (BS[0] - x)
    visible = (x > 20.0) | (ue_z + t * (BS[2] - ue_z) > STEP)
    return ue_z, gain_db, visible


@pytest.fixture(scope="module")
def traced(stepped):
    return trace_ground_truth(stepped, "stepped", GRID, BS, LOS_ONLY, num_map_paths=2, progress=False)


def test_ues_stand_on_the_terrain(traced):
    ckm, paths = traced
    ue_z, _, _ = _closed_form()
    assert not ckm["building"].values.any()
    np.testing.assert_allclose(paths["ue_z_m"].values, ue_z[paths["ue_row"].values, paths["ue_col"].values],
                               atol=1e-3)


def test_gain_is_the_line_of_sight_closed_form_and_floor_only_without_a_path(traced):
    ckm, paths = traced
    _, gain_db, visible = _closed_form()
    assert 0 < visible.sum() < visible.size  # both kinds of cell are present
    traced_gain = ckm["gain_db"].values
    np.testing.assert_allclose(traced_gain[visible], gain_db[visible], atol=0.01)
    np.testing.assert_array_equal(traced_gain[~visible], GAIN_FLOOR_DB)
    has_path = np.zeros(GRID.shape, dtype=bool)
    has_path[paths["ue_row"].values, paths["ue_col"].values] = paths["valid"].values.any(axis=1)
    np.testing.assert_array_equal(has_path, visible)
    assert "path_solver" in ckm.attrs["gain_source"]
    assert ckm.attrs["ground_m_range"] == pytest.approx([0.0, STEP], abs=1e-3)


def test_gain_is_the_power_sum_of_the_paths_with_reflections(stepped):
    """With reflections: no cell with a path at the floor, and the gain at least its strongest path's."""
    settings = RayTracingSettings(max_depth=1, diffraction=False, edge_diffraction=False, path_samples=10**4,
                                  receivers_per_call=200, seed=1)
    ckm, paths = trace_ground_truth(stepped, "stepped", GRID, BS, settings, num_map_paths=2, progress=False)
    gain = ckm["gain_db"].values
    strongest = ckm["path_gain_db"].values[0]
    power = (np.abs(paths["a"].values.astype(np.complex128)) ** 2).sum(axis=1)
    rows, cols = paths["ue_row"].values, paths["ue_col"].values
    assert np.all(gain[rows, cols][power > 0] > GAIN_FLOOR_DB)
    assert np.all(gain >= strongest - 1e-4)
    # somewhere a reflection adds to a line of sight: the sum exceeds the strongest path there
    assert np.any(gain - strongest > 0.1)


def test_gain_only_map_follows_the_terrain(stepped):
    """The RadioMapSolver's cell averages on the terrain-following measurement surface match the closed form
    (a plane at z = 1.5 m would run under the upper terrace and see nothing there)."""
    ckm, paths = trace_ground_truth(stepped, "stepped", GRID, BS, LOS_ONLY, num_map_paths=0, progress=False)
    assert paths is None and "radio_map_solver" in ckm.attrs["gain_source"]
    _, gain_db, visible = _closed_form()
    # cells whose four neighbours share their visibility: the shadow edge runs through the others
    padded = np.pad(visible, 1, mode="edge")
    interior = ((padded[1:-1, :-2] == visible) & (padded[1:-1, 2:] == visible)
                & (padded[:-2, 1:-1] == visible) & (padded[2:, 1:-1] == visible))
    lit = visible & interior
    error = ckm["gain_db"].values[lit] - gain_db[lit]
    assert lit.sum() > 100 and abs(error.mean()) < 0.3 and np.median(np.abs(error)) < 1.0
    x, _ = np.meshgrid(GRID.x_m, GRID.y_m)
    upper = lit & (x > 20.0)
    assert upper.sum() > 40 and abs((ckm["gain_db"].values[upper] - gain_db[upper]).mean()) < 0.3
    assert np.all(ckm["gain_db"].values[~visible & interior] == GAIN_FLOOR_DB)


def test_flat_ground_keeps_the_planar_map(stepped):
    place_base_station(stepped, BS, LOS_ONLY)
    lower = Grid(center_x_m=9.0, center_y_m=20.0, num_x=8, num_y=8, cell_size_m=2.0)
    np.testing.assert_array_equal(gain_map_db(stepped, lower, LOS_ONLY),
                                  gain_map_db(stepped, lower, LOS_ONLY, ground_m=np.zeros(lower.shape)))

"""One path per path: deduplicate_paths on synthetic chunks, and a toy scene whose exact path list is known."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

from dataclasses import replace

import numpy as np
import pytest
from shapely.geometry import box

from ckmsim.maps.angles import direction_to_az_el_deg
from ckmsim.raytrace.paths import (PATH_VARIABLES, count_duplicate_paths, deduplicate_paths, diffraction_sampling,
                                   trace_paths)
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.writer import Building, write_scene_folder

SPEED_OF_LIGHT = 299792458.0


def _chunk(paths: list[dict]) -> dict:
    """A one-receiver chunk from a list of paths given as dicts (missing keys: 0 / False / valid)."""
    defaults = {"a": 1.0, "delay_s": 1e-6, "dep_az_deg": 0.0, "dep_el_deg": 0.0, "arr_az_deg": 0.0,
                "arr_el_deg": 0.0, "los": False, "valid": True}
    out = {}
    for name in PATH_VARIABLES:
        values = [p.get(name, defaults[name]) for p in paths]
        dtype = bool if name in ("los", "valid") else (np.complex64 if name == "a" else np.float64)
        out[name] = np.array([values], dtype=dtype)
    return out


def test_copy_removed_strongest_kept_and_power_not_added():
    chunk = _chunk([{"a": 0.5, "delay_s": 1e-6 + 0.2e-12, "dep_az_deg": 30.003},  # the weaker copy, listed first
                    {"a": 0.6, "delay_s": 1e-6, "dep_az_deg": 30.0},
                    {"a": 0.1, "delay_s": 2e-6, "dep_az_deg": 30.0}])
    out = deduplicate_paths(chunk)
    np.testing.assert_array_equal(out["valid"], [[False, True, True]])
    # the kept copy's coefficient is unchanged: a copy is the same path found twice, not extra power
    assert out["a"][0, 1] == pytest.approx(0.6)
    assert out["a"][0, 0] == 0
    np.testing.assert_array_equal(chunk["valid"], [[True, True, True]]), "the input is not modified"


def test_near_but_distinct_paths_are_kept():
    chunk = _chunk([{"a": 1.0},
                    {"a": 0.9, "delay_s": 1e-6 + 5e-12},        # 1.5 mm longer
                    {"a": 0.8, "dep_el_deg": 0.2},              # same delay, leaves 0.2 deg higher
                    {"a": 0.7, "arr_az_deg": -0.3},             # same delay, arrives 0.3 deg off
                    {"a": 0.6, "valid": False}])                # an invalid slot is never a copy or kept
    out = deduplicate_paths(chunk)
    np.testing.assert_array_equal(out["valid"], [[True, True, True, True, False]])


def test_interaction_types_separate_paths_with_equal_geometry():
    """A reflection and a diffraction at one edge point share delay and directions but are two paths."""
    chunk = _chunk([{"a": 1.0}, {"a": 0.5}, {"a": 0.4}])
    chunk["interaction_types"] = np.array([[[1, 0], [8, 0], [8, 0]]], dtype=np.uint32)
    out = deduplicate_paths(chunk)
    np.testing.assert_array_equal(out["valid"], [[True, True, False]])


def test_count_duplicate_paths_compares_interaction_types_where_stored():
    """The builder's re-check: a reflection at an edge point and the diffraction there are two paths when the
    path set says so; without types they read as one."""
    import xarray as xr

    chunk = _chunk([{"a": 1.0}, {"a": 0.1}])
    data = {name: (("ue", "path"), values) for name, values in chunk.items()}
    without = xr.Dataset(data)
    with_types = without.assign(interaction_types=(("ue", "path", "depth"), np.array([[[1, 1], [8, 1]]], np.uint8)))
    assert count_duplicate_paths(without).tolist() == [1]
    assert count_duplicate_paths(with_types).tolist() == [0]


def test_azimuth_wrap_is_one_direction():
    chunk = _chunk([{"a": 1.0, "dep_az_deg": 179.999}, {"a": 0.9, "dep_az_deg": -179.999}])
    np.testing.assert_array_equal(deduplicate_paths(chunk)["valid"], [[True, False]])


def test_second_strongest_copy_is_replaced_by_the_next_path():
    """The case that corrupted PGM2/PAM2: the stored second path was a copy of the first."""
    chunk = _chunk([{"a": 1.0, "delay_s": 1e-6, "dep_az_deg": 10.0, "los": True},
                    {"a": 0.95, "delay_s": 1e-6, "dep_az_deg": 10.0, "los": True},
                    {"a": 0.3, "delay_s": 1.2e-6, "dep_az_deg": 40.0}])
    from ckmsim.raytrace.paths import _sort_by_power

    out = _sort_by_power(deduplicate_paths(chunk))
    assert out["valid"][0].tolist() == [True, True, False]
    assert out["dep_az_deg"][0, 1] == pytest.approx(40.0)
    assert out["los"][0].tolist() == [True, False, False]


def test_receivers_are_independent():
    """The same path at two receivers is no copy; a copy at one receiver leaves the other alone."""
    one = _chunk([{"a": 1.0}, {"a": 0.9}])
    two = _chunk([{"a": 1.0}, {"a": 0.9, "delay_s": 3e-6}])
    chunk = {name: np.concatenate([one[name], two[name]]) for name in PATH_VARIABLES}
    np.testing.assert_array_equal(deduplicate_paths(chunk)["valid"], [[True, False], [True, True]])


def test_copies_of_a_copy_all_go():
    chunk = _chunk([{"a": 1.0 - 0.1 * k} for k in range(5)])
    assert deduplicate_paths(chunk)["valid"].sum() == 1


# ------------------------------------------------------------------------------------------------------------
# A toy scene with a known path list: a ground plane and one wall
# ------------------------------------------------------------------------------------------------------------

WALL_X_M = (-10.0, 10.0)   # the wall's front face lies in the plane y = 0, facing -y
WALL_HEIGHT_M = 20.0
BS = np.array([-5.0, -20.0, 6.0])
UES = np.array([[6.0, -8.0, 1.5], [-2.0, -3.0, 1.5]])
SETTINGS = RayTracingSettings(max_depth=2, diffraction=False, edge_diffraction=False, path_samples=10**4,
                              receivers_per_call=2)


def _mirror(point, axis):
    out = np.array(point, dtype=np.float64)
    out[axis] = -out[axis]
    return out


def _on_wall(point) -> bool:
    return WALL_X_M[0] < point[0] < WALL_X_M[1] and 0.0 < point[2] < WALL_HEIGHT_M


def _cross_plane(start, end, axis):
    """Point where the segment start -> end crosses the plane ``coordinate[axis] = 0``."""
    t = start[axis] / (start[axis] - end[axis])
    return start + t * (end - start)


def _expected_paths(bs, ue) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """(delay [s], first vertex after the BS, last vertex before the UE) of every path up to depth 2, by images.

    Ground (z = 0, axis 2) and wall front (y = 0, axis 1). Reflections in the two orthogonal planes commute,
    so ground-then-wall and wall-then-ground share one image; a given geometry makes at most one of them real.
    """
    paths = [(np.linalg.norm(ue - bs), ue, bs)]                                    # line of sight
    ground_image = _mirror(bs, 2)
    g = _cross_plane(ue, ground_image, 2)
    paths.append((np.linalg.norm(ue - ground_image), g, g))                        # ground
    wall_image = _mirror(bs, 1)
    w = _cross_plane(ue, wall_image, 1)
    if _on_wall(w):
        paths.append((np.linalg.norm(ue - wall_image), w, w))                      # wall
    corner_image = _mirror(_mirror(bs, 1), 2)
    length = np.linalg.norm(ue - corner_image)
    w_last = _cross_plane(ue, corner_image, 1)                                     # ground, then wall
    g_first = _cross_plane(w_last, ground_image, 2)
    if _on_wall(w_last) and g_first[1] < 0:
        paths.append((length, g_first, w_last))
    g_last = _cross_plane(ue, corner_image, 2)                                     # wall, then ground
    w_first = _cross_plane(g_last, wall_image, 1)
    if _on_wall(w_first) and g_last[1] < 0:
        paths.append((length, w_first, g_last))
    return [(d / SPEED_OF_LIGHT, first, last) for d, first, last in paths]


@pytest.fixture(scope="module")
def wall_scene(tmp_path_factory):
    from ckmsim.scene.load import load_scene

    wall = Building(box(WALL_X_M[0], 0.0, WALL_X_M[1], 1.0), WALL_HEIGHT_M, "concrete")
    xml = write_scene_folder([wall], tmp_path_factory.mktemp("wall"), ground_bounds_m=(-60.0, -60.0, 60.0, 60.0))
    scene = load_scene(str(xml))
    place_base_station(scene, BS, SETTINGS)
    return scene


@pytest.mark.raytrace
def test_toy_scene_has_each_exact_path_once(wall_scene):
    paths = trace_paths(wall_scene, UES, SETTINGS, progress=False)
    for u, ue in enumerate(UES):
        expected = _expected_paths(BS, ue)
        assert len(expected) == 4, "the geometry is chosen to have LoS, ground, wall and one corner path"
        valid = paths["valid"].values[u]
        assert valid.sum() == len(expected), f"UE {u}: {valid.sum()} paths traced, {len(expected)} exist"
        for delay_s, first, last in expected:
            dep_az, dep_el = direction_to_az_el_deg(first - BS)
            arr_az, arr_el = direction_to_az_el_deg(last - ue)
            same = (np.abs(paths["delay_s"].values[u] - delay_s) < 1e-12) \
                & (np.abs(paths["dep_az_deg"].values[u] - dep_az) < 0.01) \
                & (np.abs(paths["dep_el_deg"].values[u] - dep_el) < 0.01) \
                & (np.abs(paths["arr_az_deg"].values[u] - arr_az) < 0.01) \
                & (np.abs(paths["arr_el_deg"].values[u] - arr_el) < 0.01) & valid
            assert same.sum() == 1, f"UE {u}: path of delay {delay_s * 1e9:.3f} ns found {same.sum()} times"
        # LoS, two single reflections (ground, wall) and the corner path; 0 none, 1 specular
        types = sorted(map(tuple, paths["interaction_types"].values[u][valid].tolist()))
        assert types == [(0, 0), (1, 0), (1, 0), (1, 1)]
    assert count_duplicate_paths(paths).sum() == 0


@pytest.mark.raytrace
def test_trace_paths_drops_a_copy_the_solver_returned(wall_scene, monkeypatch):
    """Copies are removed inside trace_paths (here one injected into the solver's raw output)."""
    import ckmsim.raytrace.paths as paths_module

    solve = paths_module._solve_chunk

    def solve_with_copy(*args, **kwargs):
        chunk = solve(*args, **kwargs)
        # append a copy of each receiver's first path, 1 dB weaker
        return {name: np.concatenate([values, values[:, :1] * (10 ** -0.05 if name == "a" else 1)], axis=1)
                for name, values in chunk.items()}

    monkeypatch.setattr(paths_module, "_solve_chunk", solve_with_copy)
    paths = trace_paths(wall_scene, UES, SETTINGS, progress=False)
    assert paths.attrs["num_duplicate_paths_removed"] == len(UES)
    assert paths["valid"].values.sum(axis=1).tolist() == [4, 4]
    assert count_duplicate_paths(paths).sum() == 0


def test_diffraction_sampling_is_set_and_restored():
    from sionna.rt.path_solvers.sb_candidate_generator import SBCandidateGenerator

    before = SBCandidateGenerator.DIFFRACTION_SAMPLING_PROBABILITY
    with pytest.raises(RuntimeError):
        with diffraction_sampling(0.7):
            assert SBCandidateGenerator.DIFFRACTION_SAMPLING_PROBABILITY == 0.7
            raise RuntimeError("restored even after an error")
    assert SBCandidateGenerator.DIFFRACTION_SAMPLING_PROBABILITY == before


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.5"])
def test_diffraction_sampling_probability_is_validated(value):
    from ckmsim.errors import CkmsimError

    with pytest.raises(CkmsimError, match="diffraction_sampling_probability"):
        RayTracingSettings(diffraction_sampling_probability=value)


@pytest.mark.raytrace
def test_diffraction_sampling_probability_reaches_the_solver(wall_scene):
    """Beside and behind the wall's right end, p = 0 samples no diffraction; p = 0.5 finds the diffraction
    around its vertical edge; going back to 0 gives the first result again (no stale kernel)."""
    behind = np.array([[14.0, 6.0, 1.5], [13.0, 10.0, 1.5]])

    def num_paths(probability):
        settings = RayTracingSettings(max_depth=2, diffraction=True, edge_diffraction=False, path_samples=10**4,
                                      receivers_per_call=2, diffraction_sampling_probability=probability)
        return trace_paths(wall_scene, behind, settings, progress=False)["valid"].values.sum(axis=1)

    without = num_paths(0.0)
    with_diffraction = num_paths(0.5)
    assert np.all(with_diffraction > without)
    np.testing.assert_array_equal(num_paths(0.0), without)


@pytest.mark.raytrace
def test_candidate_hash_slots_reach_the_solver(wall_scene):
    """Sionna drops a new candidate chain whose hash slot is taken: a table of 24 slots loses paths of the
    toy scene that the default table keeps; the class attribute is restored after each call."""
    from sionna.rt.path_solvers.sb_candidate_generator import SBCandidateGenerator

    before = SBCandidateGenerator.MIN_SPEC_COUNT_SIZE

    def num_paths(slots):
        settings = replace(SETTINGS, max_num_paths_per_src=24, candidate_hash_slots=slots)
        return int(trace_paths(wall_scene, UES, settings, progress=False)["valid"].values.sum())

    assert num_paths(10**6) == 4 * len(UES)
    assert num_paths(1) < 4 * len(UES)
    assert SBCandidateGenerator.MIN_SPEC_COUNT_SIZE == before

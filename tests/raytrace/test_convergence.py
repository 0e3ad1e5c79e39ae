"""Convergence of the PathSolver: path-set matching, union references, the check, and ``ckmsim raytrace check``."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

import ckmsim.raytrace.convergence as convergence
from ckmsim.cli import main
from ckmsim.errors import CkmsimError
from ckmsim.raytrace.convergence import (ConvergenceCheck, check_convergence, choose_probes, strongest_paths_match,
                                         union_reference)
from ckmsim.raytrace.settings import RayTracingSettings

# A path: (power [dB], departure azimuth [deg], arrival azimuth [deg], delay [s], los)
LOS = (-80.0, 10.0, -170.0, 1.0e-7, True)
WALL = (-86.0, 40.0, 150.0, 1.3e-7, False)
GROUND = (-90.0, 10.0, -170.0, 1.05e-7, False)
EDGE = (-95.0, -30.0, 100.0, 1.6e-7, False)


def _path_set(ues: list[list[tuple]]) -> xr.Dataset:
    """A path set (see ckmsim.raytrace.paths) of UEs given as lists of paths, in any order."""
    width = max(1, max(len(paths) for paths in ues))
    shape = (len(ues), width)
    data = {"a": np.zeros(shape, np.complex64), "delay_s": np.full(shape, np.nan, np.float32),
            "valid": np.zeros(shape, bool), "los": np.zeros(shape, bool)}
    for name in ("dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg"):
        data[name] = np.full(shape, np.nan, np.float32)
    for u, paths in enumerate(ues):
        for k, (power_db, dep_az, arr_az, delay, los) in enumerate(sorted(paths, key=lambda p: -p[0])):
            data["a"][u, k] = 10 ** (power_db / 20)
            data["dep_az_deg"][u, k], data["arr_az_deg"][u, k] = dep_az, arr_az
            data["dep_el_deg"][u, k] = data["arr_el_deg"][u, k] = -5.0
            data["delay_s"][u, k], data["los"][u, k], data["valid"][u, k] = delay, los, True
    coords = {"ue_x_m": ("ue", np.arange(len(ues), dtype=float)), "ue_y_m": ("ue", np.zeros(len(ues))),
              "ue_z_m": ("ue", np.full(len(ues), 1.5))}
    return xr.Dataset({name: (("ue", "path"), values) for name, values in data.items()}, coords=coords)


def _shift(path, power_db=0.0, dep_az=0.0, arr_az=0.0):
    return (path[0] + power_db, path[1] + dep_az, path[2] + arr_az, path[3], path[4])


def test_match_fractions_per_rank_and_on_nlos():
    reference = _path_set([[LOS, WALL, GROUND], [LOS, WALL], [WALL, EDGE], [EDGE], []])
    candidate = _path_set([
        [_shift(LOS, 0.3, 0.2), WALL],     # within 0.5 dB / 0.5 deg: both ranks right
        [LOS, _shift(WALL, 1.0)],          # second path 1 dB off
        [EDGE],                            # NLoS, strongest missed: its first is the reference's second
        [_shift(EDGE, arr_az=0.6)],        # NLoS, arrival 0.6 deg off; no second path in either: rank 1 right
        [],                                # no reference path: not counted
    ])
    match = strongest_paths_match(candidate, reference)
    assert match["num_ue"] == 4 and match["num_nlos_ue"] == 2
    assert match["match"] == [pytest.approx(2 / 4), pytest.approx(2 / 4)]
    assert match["match_nlos"] == [pytest.approx(0.0), pytest.approx(1 / 2)]
    np.testing.assert_array_equal(match["per_ue"], [[True, True], [True, False], [False, False], [False, True],
                                                    [False, False]])
    # looser tolerances accept the 1 dB and 0.6 deg errors
    loose = strongest_paths_match(candidate, reference, tol_db=1.1, tol_deg=0.7)
    assert loose["match"] == [pytest.approx(3 / 4), pytest.approx(3 / 4)]


def test_match_across_the_azimuth_wrap():
    reference = _path_set([[(-80.0, 179.9, 0.0, 1e-7, True)]])
    candidate = _path_set([[(-80.0, -179.9, 0.0, 1e-7, True)]])
    assert strongest_paths_match(candidate, reference, num_paths=1)["match"] == [1.0]


def test_union_keeps_each_path_once_sorted_by_power():
    first = _path_set([[WALL, GROUND], [EDGE]])
    # the second run finds the LoS path the first missed, and the wall path again (float noise)
    second = _path_set([[LOS, (WALL[0] + 1e-4, WALL[1] + 1e-4, WALL[2], WALL[3] + 1e-13, False)], [EDGE]])
    union = union_reference([first, second])
    assert union.attrs["union_of"] == 2
    assert union["valid"].values.sum(axis=1).tolist() == [3, 1]
    power_db = 10 * np.log10(np.abs(union["a"].values[0, :3]) ** 2)
    np.testing.assert_allclose(power_db, [LOS[0], WALL[0] + 1e-4, GROUND[0]], atol=1e-3)
    assert strongest_paths_match(union, union)["match"] == [1.0, 1.0]
    assert strongest_paths_match(first, union)["match"] == [0.5, pytest.approx(0.5)]


def test_union_refuses_other_ues():
    with pytest.raises(CkmsimError, match="UEs"):
        union_reference([_path_set([[LOS]]), _path_set([[LOS], [LOS]])])
    with pytest.raises(CkmsimError, match="at least one"):
        union_reference([])


@pytest.mark.parametrize("kwargs, field", [({"ray_levels": (10**5,)}, "ray_levels"),
                                           ({"ray_levels": (10**5, 3 * 10**4)}, "ray_levels"),
                                           ({"target": (0.9,)}, "target"), ({"target": (0.9, 1.2)}, "target"),
                                           ({"num_probes": 0}, "num_probes"), ({"tol_deg": -1.0}, "tol_deg")])
def test_check_settings_are_validated(kwargs, field):
    with pytest.raises(CkmsimError, match=field):
        ConvergenceCheck(**kwargs)


def test_probes_are_a_reproducible_subset():
    chosen = choose_probes(1000, 64, seed=3)
    assert len(np.unique(chosen)) == 64 and chosen.max() < 1000
    np.testing.assert_array_equal(chosen, choose_probes(1000, 64, seed=3))
    np.testing.assert_array_equal(choose_probes(10, 64, seed=3), np.arange(10))


def test_check_stops_once_a_level_is_verified(monkeypatch):
    """Fake solver: 1e3 rays miss the strongest path of half the UEs, 1e4 and more find everything.
    The check traces 1e3, 1e4, 1e5 (the one that verifies 1e4) and stops before 1e6."""
    truth = [[LOS, WALL], [WALL, EDGE], [LOS, GROUND], [EDGE]]
    coarse = [[WALL], [EDGE], [LOS, GROUND], [EDGE]]
    traced = []

    def fake_trace(scene, positions_m, settings, progress=True):
        traced.append(settings.path_samples)
        assert settings.receivers_per_call == len(positions_m)
        return _path_set(coarse if settings.path_samples < 10**4 else truth)

    monkeypatch.setattr(convergence, "trace_paths", fake_trace)
    check = ConvergenceCheck(ray_levels=(10**3, 10**4, 10**5, 10**6), target=(0.95, 0.9))
    report = check_convergence(None, np.zeros((4, 3)), RayTracingSettings(), check, progress=False, log=None)
    assert traced == [10**3, 10**3, 10**4, 10**5], "an untimed warm-up at the lowest level, then the levels"
    assert report.converged_rays == 10**4
    assert report.levels[0].match == [0.5, 0.5]
    assert report.levels[1].match == [1.0, 1.0]
    assert report.num_nlos == 2
    assert "1e+05 (in its own reference)" in report.table()
    # a config's own ray count is always traced and verified by a higher level
    traced.clear()
    report = check_convergence(None, np.zeros((4, 3)), RayTracingSettings(), check, must_verify_rays=2 * 10**5,
                               warm_up=False, progress=False, log=None)
    assert traced == [10**3, 10**4, 10**5, 2 * 10**5, 10**6]
    assert report.level(2 * 10**5).match == [1.0, 1.0]


def test_check_not_reached(monkeypatch):
    runs = iter([[[WALL]], [[WALL]], [[GROUND]], [[LOS]]])
    monkeypatch.setattr(convergence, "trace_paths", lambda *a, **k: _path_set(next(runs)))
    check = ConvergenceCheck(ray_levels=(10, 100, 1000), target=(0.9, 0.9))
    report = check_convergence(None, np.zeros((1, 3)), RayTracingSettings(), check, progress=False, log=None)
    assert report.converged_rays is None
    assert "not reached within 1e+03 rays" in report.summary()


@pytest.mark.raytrace
def test_cli_check_on_a_toy_scene(tmp_path, capsys):
    """One real, tiny ``ckmsim raytrace check``: a wall on a ground plane, where every path is found at once."""
    from ckmsim.scene.writer import Building, write_scene_folder

    xml = write_scene_folder([Building(box(-10.0, 0.0, 10.0, 1.0), 20.0, "concrete")], tmp_path / "wall",
                             ground_bounds_m=(-40.0, -40.0, 40.0, 40.0))
    out = tmp_path / "check.json"
    code = main(["raytrace", "check", str(xml), "--cells", "8", "--cell-size", "2", "--center", "0,-10",
                 "--bs", "-5,-20,6", "--probes", "12", "--rays", "1e3,3e3,1e4", "--max-depth", "2",
                 "--no-diffraction", "--quiet", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "| rays | time | strongest path right (NLoS) | second path right (NLoS) |" in printed
    assert "target 95 % / 90 % reached at 1e+03 rays on 12 probe UEs" in printed
    report = json.loads(out.read_text())
    assert report["converged_rays"] == 1000
    assert [level["rays"] for level in report["levels"]] == [1000, 3000]
    assert report["levels"][0]["match"] == [1.0, 1.0]


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "Unknown scene 'nowhere'"),
    (["simple_street_canyon", "--rays", "1e4,abc"], "--rays expects comma-separated numbers"),
    (["simple_street_canyon", "--rays", "1e5,1e4"], "ray_levels must be >= 2 increasing"),
    (["simple_street_canyon", "--target", "0.95,1.5"], "target must be a number in [0, 1]"),
    (["simple_street_canyon", "--diffraction-sampling", "2"], "diffraction_sampling_probability"),
])
def test_cli_check_bad_input(capsys, args, message):
    code = main(["raytrace", "check", *args, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and err.startswith("ckmsim: error: ")


def test_all_levels_and_reference_runs(monkeypatch):
    """Without early stopping every level is traced; extra reference runs (other seeds, at the top level) only
    enter the reference: here one finds a stronger path that every level missed."""
    traced = []

    def fake_trace(scene, positions_m, settings, progress=True):
        traced.append((settings.path_samples, settings.seed))
        return _path_set([[LOS, WALL]] if settings.seed == 43 else [[WALL, GROUND]])

    monkeypatch.setattr(convergence, "trace_paths", fake_trace)
    check = ConvergenceCheck(ray_levels=(10, 100, 1000), target=(0.9, 0.9))
    report = check_convergence(None, np.zeros((1, 3)), RayTracingSettings(seed=42), check, warm_up=False,
                               stop_early=False, reference_runs=1, progress=False, log=None)
    assert traced == [(10, 42), (100, 42), (1000, 42), (1000, 43)]
    assert [level.rays for level in report.levels] == [10, 100, 1000]
    assert all(level.match == [0.0, 0.0] for level in report.levels)
    assert report.reference_runs == 4 and report.converged_rays is None

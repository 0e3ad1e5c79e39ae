"""The builder's ground-truth checks: no duplicate path in any stored set, and a per-scene convergence check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import ckmsim.raytrace.convergence as convergence
from ckmsim.data.builder import build_dataset, check_no_duplicate_paths
from ckmsim.data.config import DatasetConfig, load_dataset_config
from ckmsim.errors import CkmsimError
from ckmsim.raytrace.convergence import ConvergenceCheck, ConvergenceLevel, ConvergenceReport
from ckmsim.raytrace.settings import RayTracingSettings

REPO = Path(__file__).resolve().parents[2]
CITY = str(REPO / "scenes" / "city-s0" / "scene.xml")


def _config(**changes) -> DatasetConfig:
    """One tile of 8x8 cells of 4 m of city-s0, one transmitter; few rays, depth 2, no CSI."""
    values = dict(name="checks", seed=5, scenes=(CITY,), tile_cells=8, cell_size_m=4.0, tiles_per_scene=1,
                  transmitters_per_tile=1, min_open_fraction=0.4,
                  ray_tracing=RayTracingSettings(max_depth=2, radio_map_samples=10**4, path_samples=2000,
                                                 receivers_per_call=64),
                  convergence=ConvergenceCheck(ray_levels=(1000, 4000), num_probes=12))
    values.update(changes)
    return DatasetConfig(**values)


def _path_set(delays_s, dep_az_deg) -> xr.Dataset:
    shape = (1, len(delays_s))
    data = {"a": np.full(shape, 1e-4, np.complex64), "delay_s": np.array([delays_s], np.float32),
            "dep_az_deg": np.array([dep_az_deg], np.float32), "dep_el_deg": np.zeros(shape, np.float32),
            "arr_az_deg": np.zeros(shape, np.float32), "arr_el_deg": np.zeros(shape, np.float32),
            "los": np.zeros(shape, bool), "valid": np.ones(shape, bool)}
    out = xr.Dataset({k: (("ue", "path"), v) for k, v in data.items()})
    out.attrs["num_duplicate_paths_removed"] = 7
    return out


def test_a_duplicate_that_slipped_through_stops_the_build():
    with pytest.raises(RuntimeError, match="sample s-3: 1 duplicate path"):
        check_no_duplicate_paths(_path_set([1e-7, 1e-7, 2e-7], [10.0, 10.0, 10.0]), "s-3")
    assert check_no_duplicate_paths(_path_set([1e-7, 1e-7, 2e-7], [10.0, 11.0, 10.0]), "s-3") == 7
    assert check_no_duplicate_paths(None, "s-3") is None


@pytest.mark.raytrace
def test_build_records_convergence_and_removed_copies(tmp_path):
    logged = []
    store = build_dataset(_config(), tmp_path / "store", progress=False, log=logged.append)
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    entry = manifest["convergence"][CITY]
    assert entry["path_samples"] == 2000
    assert [level["rays"] for level in entry["levels"]] == [1000, 2000, 4000]
    assert len(entry["match_at_path_samples"]) == 2
    assert all(0.0 <= m <= 1.0 for m in entry["match_at_path_samples"])
    assert entry["check"]["num_probes"] == 12 and entry["num_probes"] == 12
    assert any("convergence check of" in line for line in logged)
    assert all(isinstance(r["num_duplicate_paths_removed"], int) for r in store.records)


def test_config_below_the_converged_rays_warns_and_is_checked_once(tmp_path, monkeypatch):
    """A faked check (no tracing) that converges only at 1e5 rays: the build warns and records it; a resumed
    build does not run the check again."""
    calls = []

    def fake_check(scene, positions_m, settings, check, must_verify_rays=None, progress=True, log=print):
        calls.append(must_verify_rays)
        levels = [ConvergenceLevel(rays, 1.0, match, match, 3.0) for rays, match in
                  ((must_verify_rays, [0.8, 0.6]), (10**5, [0.97, 0.93]), (10**6, [1.0, 1.0]))]
        return ConvergenceReport(check, levels, converged_rays=10**5, num_probes=len(positions_m), num_nlos=2)

    monkeypatch.setattr(convergence, "check_convergence", fake_check)
    config = _config()
    logged = []
    build_dataset(config, tmp_path / "store", max_samples=0, progress=False, log=logged.append)
    assert calls == [], "nothing to trace, nothing checked"
    with pytest.warns(UserWarning, match="path_samples = 2e\\+03 matches the strongest paths in 80.0 % / 60.0 %.*"
                                         "the target is reached at 1e\\+05 rays"):
        build_dataset(config, tmp_path / "store", progress=False, log=logged.append)
    assert calls == [2000]
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["convergence"][CITY]["match_at_path_samples"] == [0.8, 0.6]
    assert "warning" in manifest["convergence"][CITY]
    # the recorded check is reused on resume (here: nothing left to trace, and a forced re-run of the plan)
    from ckmsim.data.builder import check_scene_convergence, plan_samples
    from ckmsim.data.store import DatasetStore

    store = DatasetStore.open(tmp_path / "store", writable=True)
    check_scene_convergence(config, plan_samples(config), store, progress=False, log=logged.append)
    assert calls == [2000]


def test_no_check_without_a_convergence_section(tmp_path, monkeypatch):
    monkeypatch.setattr(convergence, "check_convergence",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("check ran")))
    config = _config(convergence=None)
    assert "convergence" not in config.to_dict(), "stores built before the check still resume"
    from ckmsim.data.builder import check_scene_convergence

    assert check_scene_convergence(config, [], None) == {}


def test_convergence_section_is_validated(tmp_path):
    toml = tmp_path / "bad.toml"
    toml.write_text(f'[dataset]\nscenes = ["{CITY}"]\n[convergence]\nray_levels = [1000]\n')
    with pytest.raises(CkmsimError, match="bad.toml.*ray_levels must be >= 2 increasing"):
        load_dataset_config(toml)
    toml.write_text(f'[dataset]\nscenes = ["{CITY}"]\n[convergence]\nprobes = 3\n')
    with pytest.raises(CkmsimError, match=r"unknown key\(s\) \['probes'\] in \[convergence\]"):
        load_dataset_config(toml)
    toml.write_text(f'[dataset]\nscenes = ["{CITY}"]\n[convergence]\nnum_probes = 64\nray_levels = [3e4, 1e5]\n')
    assert load_dataset_config(toml).convergence == ConvergenceCheck(num_probes=64, ray_levels=(30000, 100000))

"""Dataset builder and store: resume after an interruption, geometry of the traced layers, bad configs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ckmsim.data.builder import build_dataset, plan_samples
from ckmsim.data.config import DatasetConfig, load_dataset_config
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import direction_to_az_el_deg
from ckmsim.raytrace.csi import CsiSettings
from ckmsim.raytrace.settings import RayTracingSettings

REPO = Path(__file__).resolve().parents[2]
CITY = str(REPO / "scenes" / "city-s0" / "scene.xml")
CROSSROADS = str(REPO / "scenes" / "crossroads-osm" / "scene.xml")


def _tiny_config(**changes) -> DatasetConfig:
    """Two scenes x 2 tiles x 1 transmitter of 8x8 cells of 4 m; few rays, depth 2; a 3-UE CSI drop."""
    config = DatasetConfig(
        name="tiny", seed=3, scenes=(CITY, CROSSROADS), tile_cells=8, cell_size_m=4.0, tiles_per_scene=2,
        transmitters_per_tile=1, min_open_fraction=0.4, test_scenes=(CROSSROADS,), val_fraction=0.5,
        ray_tracing=RayTracingSettings(max_depth=2, radio_map_samples=10**5, path_samples=2000,
                                       receivers_per_call=64),
        csi=CsiSettings(num_ues=3, num_subcarriers=8, bs_rows=2, bs_cols=2, ue_rows=1, ue_cols=2))
    return replace(config, **changes)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The tiny dataset built in one go."""
    return build_dataset(_tiny_config(), tmp_path_factory.mktemp("full") / "store", progress=False, log=lambda m: None)


def _assert_same_store(a: DatasetStore, b: DatasetStore) -> None:
    def without_timings(records):
        return [{k: v for k, v in r.items() if k != "timings_s"} for r in records]

    assert without_timings(a.records) == without_timings(b.records)
    assert sorted(a.samples.data_vars) == sorted(b.samples.data_vars)
    for name in a.samples.data_vars:
        first, second = a.samples[name].values, b.samples[name].values
        if np.issubdtype(first.dtype, np.inexact):
            # The solvers repeat themselves to float32 rounding (~1e-5 dB on a few cells), not bit for bit;
            # a lost, duplicated or re-seeded sample differs by orders of magnitude more.
            atol = 1e-3 if name.endswith("_db") else 1e-3 * float(np.nanmax(np.abs(first)))
            np.testing.assert_allclose(first, second, rtol=1e-4, atol=atol, err_msg=name)
        else:
            np.testing.assert_array_equal(first, second, err_msg=name)


def test_plan_is_deterministic_and_splits_by_tile():
    config = _tiny_config()
    first, second = plan_samples(config), plan_samples(config)
    assert first == second
    assert len(first) == 4
    assert [t.split for t in first if t.scene == CROSSROADS] == ["test", "test"]
    assert sorted(t.split for t in first if t.scene == CITY) == ["train", "val"]
    assert len({t.id for t in first}) == len(first)
    assert plan_samples(replace(config, seed=4)) != first


def test_whole_validation_scene_goes_to_val_and_stays_out_of_old_manifests():
    config = _tiny_config(val_scenes=(CITY,), val_fraction=0.0)
    assert [t.split for t in plan_samples(config) if t.scene == CITY] == ["val", "val"]
    assert "val_scenes" in config.to_dict() and "val_scenes" not in _tiny_config().to_dict()
    with pytest.raises(CkmsimError, match="both test_scenes and val_scenes"):
        _tiny_config(val_scenes=(CROSSROADS,))


def test_manifest_records_config_versions_and_samples(uninterrupted):
    manifest = json.loads((uninterrupted.path / "manifest.json").read_text())
    assert manifest["config"] == _tiny_config().to_dict()
    assert manifest["num_planned"] == len(uninterrupted) == 4
    assert manifest["versions"]["sionna-rt"] and manifest["versions"]["tensorflow"]
    for record in manifest["samples"]:
        # gain_db is the paths' power sum where the PathSolver runs: no RadioMapSolver call (issue 13)
        assert record["timings_s"]["path_solver"] > 0 and "radio_map_solver" not in record["timings_s"]
        assert isinstance(record["num_duplicate_paths_removed"], int)
        assert record["timings_s"]["sample_total"] >= record["timings_s"]["solver_total"]
    assert list(uninterrupted.indices("test")) == [2, 3]


def test_resume_after_interruption_between_append_and_commit_equals_uninterrupted(tmp_path, uninterrupted,
                                                                                 monkeypatch):
    out = tmp_path / "store"
    build_dataset(_tiny_config(), out, max_samples=1, progress=False, log=lambda m: None)
    # Crash in the worst place: the second sample's arrays are in samples.zarr, its record is not committed.
    original_write = DatasetStore._write_manifest
    calls = {"n": 0}

    def crash_on_commit(self):
        calls["n"] += 1
        if self.manifest["samples"] and len(self.manifest["samples"]) == 2:
            raise KeyboardInterrupt
        original_write(self)

    monkeypatch.setattr(DatasetStore, "_write_manifest", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(_tiny_config(), out, progress=False, log=lambda m: None)
    monkeypatch.setattr(DatasetStore, "_write_manifest", original_write)
    assert len(DatasetStore.open(out)) == 1
    resumed = build_dataset(_tiny_config(), out, progress=False, log=lambda m: None)
    assert len(resumed) == 4
    _assert_same_store(DatasetStore.open(out), uninterrupted)


def test_resume_refuses_a_store_of_another_config(tmp_path):
    out = tmp_path / "store"
    build_dataset(_tiny_config(), out, max_samples=1, progress=False, log=lambda m: None)
    with pytest.raises(CkmsimError, match="another config"):
        build_dataset(_tiny_config(seed=9), out, progress=False, log=lambda m: None)


def test_los_cells_have_the_geometric_angles_and_building_matches_the_scene(uninterrupted):
    from ckmsim.maps.grid import Grid
    from ckmsim.scene.geometry import building_mask
    from ckmsim.scene.load import load_scene

    checked = 0
    for index, record in enumerate(uninterrupted.records):
        ckm = uninterrupted.ckm(index)
        grid = Grid.from_dict(record["grid"])
        np.testing.assert_array_equal(ckm["building"].values, building_mask(load_scene(record["scene"]), grid))
        tx = np.array(record["tx_position_m"])
        rows, cols = np.nonzero(ckm["los"].values)
        cells = grid.cell_centers_m()[rows, cols]
        # Uplink convention: arrival at the BS comes from the UE; departure at the UE heads to the BS.
        bs_az, bs_el = direction_to_az_el_deg(cells - tx)
        ue_az, ue_el = direction_to_az_el_deg(tx - cells)
        strongest = {name: ckm[name].values[0, rows, cols] for name in ("aoa_az_deg", "aoa_el_deg", "aod_az_deg",
                                                                         "aod_el_deg", "toa_s")}
        np.testing.assert_allclose(strongest["aoa_el_deg"], bs_el, atol=0.01)
        np.testing.assert_allclose(strongest["aod_el_deg"], ue_el, atol=0.01)
        az_error = lambda a, b: np.abs((a - b + 180.0) % 360.0 - 180.0)  # noqa: E731
        horizontal = np.abs(bs_el) < 89.0
        assert np.all(az_error(strongest["aoa_az_deg"], bs_az)[horizontal] < 0.01)
        assert np.all(az_error(strongest["aod_az_deg"], ue_az)[horizontal] < 0.01)
        np.testing.assert_allclose(strongest["toa_s"], np.linalg.norm(cells - tx, axis=1) / 299_792_458.0,
                                   rtol=1e-5)
        checked += len(rows)
    assert checked > 20


def test_csi_has_the_configured_shape_and_reciprocal_layout(uninterrupted):
    sample = uninterrupted.sample(0)
    assert sample["h_dl"].shape == (3, 8, 2, 4)
    assert sample["h_ul"].shape == (3, 8, 4, 2)
    assert np.all(np.isfinite(sample["h_dl"].values))
    # The drop UEs stand on open cells of the tile.
    rows, cols = sample["ue_cell"].values.T
    assert not sample["building"].values[rows, cols].any()
    # Different carriers: the uplink is not the transpose of the downlink, but of the same order of magnitude.
    dl_power = np.mean(np.abs(sample["h_dl"].values) ** 2)
    ul_power = np.mean(np.abs(sample["h_ul"].values) ** 2)
    assert 0.5 < ul_power / dl_power < 2.0
    assert not np.allclose(np.swapaxes(sample["h_ul"].values, -1, -2), sample["h_dl"].values)


@pytest.mark.parametrize("text, message", [
    ("[dataset]\nscenes = ['munich']\ntile_cels = 8\n", "unknown key"),
    ("[dataset]\nscenes = ['munich']\n[raytracing]\n", "unknown section"),
    ("[dataset]\nscenes = ['munich']\n[ray_tracing]\nmax_dept = 2\n", "max_dept"),
    ("[dataset]\nscenes = ['munich']\n[csi]\nnum_ues = 0\n", "num_ues"),
    ("[dataset]\nscenes = []\n", "no scene"),
    ("[dataset]\nscenes = ['munich']\n[split]\ntest_scenes = ['etoile']\n", "test_scenes"),
    ("[dataset]\nscenes = ['munich']\n[split]\nval_scenes = ['etoile']\n", "val_scenes"),
    ("[dataset]\nscenes = ['munich']\n[split]\nval_fraction = 0.7\ntest_fraction = 0.6\n", "exceeds 1"),
    ("[dataset\nscenes = ['munich']\n", "not valid TOML"),
])
def test_bad_configs_fail_with_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CkmsimError, match=message) as info:
        load_dataset_config(path)
    assert "bad.toml" in str(info.value)


def test_shipped_small_config_loads_with_absolute_scene_paths():
    config = load_dataset_config(REPO / "experiments" / "datasets" / "small.toml")
    assert all(Path(s).is_file() for s in config.scenes)
    assert config.test_scenes == (config.scenes[2],)
    assert config.csi is not None and config.csi.num_ues == 16


def test_store_rejects_bad_index_and_missing_folder(uninterrupted, tmp_path):
    with pytest.raises(CkmsimError, match="out of range"):
        uninterrupted.ckm(len(uninterrupted))
    with pytest.raises(CkmsimError, match="manifest.json is missing"):
        DatasetStore.open(tmp_path / "nothing")
    with pytest.raises(CkmsimError, match="split must be"):
        uninterrupted.indices("training")


@pytest.mark.parametrize("executor", [{"workers": 2}, {"ray_address": "local", "workers": 2}],
                         ids=["process-pool", "ray-local"])
def test_parallel_executors_build_the_same_store(tmp_path, uninterrupted, executor):
    out = tmp_path / "store"
    build_dataset(_tiny_config(), out, progress=False, log=lambda m: None, **executor)
    _assert_same_store(DatasetStore.open(out), uninterrupted)


def test_cli_build_info_show_from_a_toml_config(tmp_path):
    from ckmsim.cli import main

    config = tmp_path / "tiny.toml"
    config.write_text(f"""
[dataset]
name = "cli"
seed = 1
scenes = ["{CITY}"]
tile_cells = 8
cell_size_m = 4.0
tiles_per_scene = 1
min_open_fraction = 0.4
[ray_tracing]
max_depth = 1
radio_map_samples = 100000
path_samples = 2000
receivers_per_call = 64
""")
    out = tmp_path / "store"
    assert main(["dataset", "build", str(config), "--out", str(out), "--quiet"]) == 0
    assert len(DatasetStore.open(out)) == 1
    assert main(["dataset", "info", str(out)]) == 0
    png = tmp_path / "sample.png"
    assert main(["dataset", "show", str(out), "--index", "0", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["dataset", "show", str(out), "--index", "3"]) == 2
    assert main(["dataset", "build", str(tmp_path / "missing.toml")]) == 2

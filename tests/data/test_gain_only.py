"""Gain-only datasets (``num_map_paths = 0``): no PathSolver, gain map + building + transmitter only, and
every consumer that needs a path layer refuses the store by name."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ckmsim.data.builder import build_dataset
from ckmsim.data.config import DatasetConfig, load_dataset_config
from ckmsim.data.pipeline import GainEncoder, PathEncoder, pair_generator, pairs_dataset
from ckmsim.data.store import PATH_LAYERS, DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import grid_of
from ckmsim.raytrace.gain_map import gain_map_db
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.scene.load import load_scene
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.raytrace.settings import RayTracingSettings

REPO = Path(__file__).resolve().parents[2]
CITY = str(REPO / "scenes" / "city-s0" / "scene.xml")


def _config(num_map_paths: int) -> DatasetConfig:
    """One tile of 8x8 cells of 4 m with 2 transmitters (one multi-AP area); few rays, depth 2."""
    return DatasetConfig(name="gain-only", seed=5, scenes=(CITY,), tile_cells=8, cell_size_m=4.0, tiles_per_scene=1,
                         transmitters_per_tile=2, min_open_fraction=0.4, num_map_paths=num_map_paths,
                         ray_tracing=RayTracingSettings(max_depth=2, radio_map_samples=10**5, path_samples=2000,
                                                        receivers_per_call=64))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The same plan built gain-only and with one path layer."""
    root = tmp_path_factory.mktemp("gain-only")
    quiet = {"progress": False, "log": lambda m: None}
    return (build_dataset(_config(0), root / "gain", **quiet), build_dataset(_config(1), root / "paths", **quiet))


def test_gain_only_store_holds_the_gain_map_of_the_full_build_and_no_path_layer(stores):
    gain_only, with_paths = stores
    reopened = DatasetStore.open(gain_only.path)
    assert reopened.gain_only and not with_paths.gain_only
    assert set(reopened.layers) == {"gain_db", "building", "ground_m"}
    assert not set(PATH_LAYERS) & set(reopened.samples.data_vars)
    assert {"tx_position_m", "x_m", "y_m"} <= set(reopened.samples.data_vars)
    for record in reopened.records:
        assert "path_solver" not in record["timings_s"] and record["timings_s"]["radio_map_solver"] > 0
    scene = load_scene(CITY)
    for index, record in enumerate(reopened.records):
        # The stored map is the RadioMapSolver's, called here directly with the sample's seed and BS.
        ckm = reopened.ckm(index)
        place_base_station(scene, record["tx_position_m"], replace(_config(0).ray_tracing, seed=record["seed"]))
        direct_db = gain_map_db(scene, grid_of(ckm), replace(_config(0).ray_tracing, seed=record["seed"]),
                                ckm["ground_m"].values)
        open_cells = ~ckm["building"].values
        np.testing.assert_allclose(ckm["gain_db"].values[open_cells], direct_db[open_cells], rtol=0, atol=1e-3)
        np.testing.assert_array_equal(ckm["building"].values, with_paths.ckm(index)["building"].values)
    ckm = reopened.ckm(1)
    assert ckm.attrs["bs_position_m"] == reopened.records[1]["tx_position_m"]


def test_path_layers_requested_from_a_gain_only_store_fail_by_name(stores):
    gain_only, with_paths = stores
    with pytest.raises(CkmsimError, match=r"gain-only.*num_map_paths = 0.*'path_gain_db'"):
        gain_only.ckm(0, layers=("gain_db", "path_gain_db"))
    assert "path_gain_db" in with_paths.ckm(0, layers=("path_gain_db", "los"))
    degradation = Degradation([Subsample(2)])
    with pytest.raises(CkmsimError, match=r"gain-only.*PathEncoder"):
        next(pair_generator(gain_only, degradation, PathEncoder(), split=None))
    with pytest.raises(CkmsimError, match=r"gain-only.*\['los'\].*GainEncoder"):
        pairs_dataset(gain_only, degradation, GainEncoder(priors=("los", "building")), split=None)
    x, y = next(pair_generator(gain_only, degradation, GainEncoder(), split=None))
    assert x.shape == (8, 8, 3) and y.shape == (8, 8, 1)


def test_cross_ap_areas_read_a_gain_only_store(stores):
    from ckmsim.models.crossap.data import group_areas, load_area

    gain_only, _ = stores
    (ref,) = group_areas(gain_only)
    area = load_area(gain_only, ref)
    assert area.gain_db.shape == (2, 8, 8) and area.building.shape == (8, 8)
    assert np.all(np.isnan(area.gain_db[:, area.building]))


def test_cli_info_and_show_work_on_a_gain_only_store(stores, tmp_path):
    from ckmsim.cli import main

    gain_only, _ = stores
    assert main(["dataset", "info", str(gain_only.path)]) == 0
    png = tmp_path / "sample.png"
    assert main(["dataset", "show", str(gain_only.path), "--index", "0", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("value", [-1, 1.5, "0"])
def test_bad_num_map_paths_is_named(tmp_path, value):
    path = tmp_path / "bad.toml"
    path.write_text(f"[dataset]\nscenes = ['munich']\nnum_map_paths = {value!r}\n".replace("'0'", '"0"'))
    with pytest.raises(CkmsimError, match=r"bad.toml.*num_map_paths must be an integer >= 0"):
        load_dataset_config(path)


def test_gain_only_flag_follows_num_map_paths():
    assert _config(0).gain_only and not replace(_config(0), num_map_paths=2).gain_only

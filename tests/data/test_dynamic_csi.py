"""Dynamic-CSI datasets (issue 16): coherence blocks with moving objects, stored paths, any array on reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as Polygon

from ckmsim.data.builder import build_dataset
from ckmsim.data.config import DatasetConfig, DynamicSettings
from ckmsim.data.dynamic import block_split, read_dynamic_csi, stored_path_name, upa_shape
from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.csi import CsiSettings
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.dynamic import MovingObjects, _footprint_points

REPO = Path(__file__).resolve().parents[2]
CROSSROADS = str(REPO / "scenes" / "crossroads-osm" / "scene.xml")
OBJECTS = MovingObjects(num_cars=2, num_pedestrians=3)


def _config(**changes) -> DatasetConfig:
    """One 16 x 16 tile of 3 m of the crossroads, one BS, 2 blocks of 4 UEs at LAD-CKM's carriers."""
    config = DatasetConfig(
        name="dynamic", seed=5, scenes=(CROSSROADS,), tile_cells=16, cell_size_m=3.0, tiles_per_scene=1,
        transmitters_per_tile=1, min_open_fraction=0.5, num_map_paths=0,
        ray_tracing=RayTracingSettings(frequency_hz=6.765e9, max_depth=2, radio_map_samples=10**5,
                                       path_samples=20000, receivers_per_call=64),
        csi=CsiSettings(num_ues=4, num_subcarriers=8, bs_rows=2, bs_cols=2),
        dynamic=DynamicSettings(num_blocks=2, max_paths=64, objects=OBJECTS))
    return replace(config, **changes)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_dataset(_config(), tmp_path_factory.mktemp("dyn") / "store", progress=False, log=lambda m: None)


def test_blocks_move_the_objects_and_drop_ues_clear_of_them_and_of_buildings(store):
    raw = store.sample(0)
    cars, peds = raw["block_cars"].values, raw["block_pedestrians"].values
    assert cars.shape == (2, 2, 4) and peds.shape == (2, 3, 3)
    assert not np.allclose(cars[0], cars[1]) and not np.allclose(peds[0], peds[1])
    ckm = store.ckm(0)
    positions = raw["block_ue_position_m"].values
    cells = raw["block_ue_cell"].values
    assert positions.shape == (2, 4, 3)
    assert not ckm["building"].values[cells[..., 0], cells[..., 1]].any()
    for block in range(2):
        assert len({tuple(c) for c in cells[block]}) == 4
        # an independent containment test: matplotlib's polygon of each object's footprint corners
        footprints = [_footprint_points(x, y, np.radians(yaw), *OBJECTS.car_size_m[:2]) for x, y, _, yaw in cars[block]]
        footprints += [_footprint_points(x, y, 0.0, *OBJECTS.pedestrian_size_m[:2]) for x, y, _ in peds[block]]
        for corners in footprints:
            assert not Polygon(np.asarray(corners)[:, :2]).contains_points(positions[block, :, :2]).any()


def test_stored_paths_give_the_csi_a_direct_trace_gives_with_the_objects_in_place(store):
    """The CSI read from the stored paths equals trace_csi on the scene with block 1's objects placed at the
    stored positions and the UEs at the stored positions (max_paths holds every path: nothing dropped)."""
    from ckmsim.raytrace.csi import trace_csi
    from ckmsim.scene.dynamic import DynamicScene
    from ckmsim.scene.load import load_scene

    record = store.records[0]
    assert record["max_dropped_path_power_share"] == 0.0
    raw = store.sample(0)
    read = read_dynamic_csi(store, 0, (2, 2), 1, blocks=[1])
    assert read["h_dl"].shape == (1, 4, 8, 1, 4) and read["h_ul"].shape == (1, 4, 8, 4, 1)
    scene = load_scene(CROSSROADS)
    config = _config()
    moving = DynamicScene(scene, Grid.from_dict(record["grid"]), OBJECTS, seed=record["seed"])
    moving.place(raw["block_cars"].values[1], raw["block_pedestrians"].values[1])
    settings = replace(config.ray_tracing, seed=record["seed"])
    direct, _ = trace_csi(scene, record["tx_position_m"], raw["block_ue_position_m"].values[1], config.csi, settings)
    for key in ("h_dl", "h_ul"):
        scale = np.abs(direct[key]).max()
        assert scale > 0
        np.testing.assert_allclose(read[key][0], direct[key], atol=1e-3 * scale)


def test_any_array_is_applied_to_the_stored_paths(store):
    """Single antennas: H(f) = sum_l a_l exp(-j 2 pi f tau_l) from the stored paths (closed form); a 64-element
    BS and a 4-element UE give the shapes of the paper's sweep, with the total power of the single-antenna
    channel times the element counts to within the arrays' spatial averaging."""
    raw = store.sample(0)
    one = read_dynamic_csi(store, 0, 1, 1)
    a = raw[stored_path_name("dl", "a")].values
    tau = np.nan_to_num(raw[stored_path_name("dl", "delay_s")].values)
    offsets = (np.arange(8) - 4) * 312.5e3
    expected = np.einsum("bup,bupk->buk", a, np.exp(-2j * np.pi * tau[..., None] * offsets))
    np.testing.assert_allclose(one["h_dl"][..., 0, 0], expected, atol=1e-6 * np.abs(expected).max())
    big = read_dynamic_csi(store, 0, 64, 4)
    assert big["h_dl"].shape == (2, 4, 8, 4, 64) and big["h_ul"].shape == (2, 4, 8, 64, 4)
    ratio = np.mean(np.abs(big["h_dl"]) ** 2) / np.mean(np.abs(one["h_dl"]) ** 2)
    assert 0.2 < ratio < 5.0     # per-element power is the single-antenna power (isotropic elements), on average


def test_upa_shapes_block_split_and_errors(store):
    assert [upa_shape(n) for n in (1, 4, 8, 16, 32, 64, 128)] == [(1, 1), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8),
                                                                   (8, 16)]
    assert block_split(20, 4, 2) == {"train": list(range(14)), "val": [14, 15], "test": [16, 17, 18, 19]}
    with pytest.raises(CkmsimError, match="leave a training block"):
        block_split(4, 3, 1)
    with pytest.raises(CkmsimError, match="not among the 2 blocks"):
        read_dynamic_csi(store, 0, 4, blocks=[2])
    with pytest.raises(CkmsimError, match=r"needs a \[csi\]"):
        _config(csi=None)
    with pytest.raises(CkmsimError, match="num_blocks"):
        DynamicSettings(num_blocks=0)
    with pytest.raises(CkmsimError, match="unknown key"):
        DynamicSettings.from_dict({"num_blocks": 2, "num_trucks": 3})
    assert DatasetConfig.from_dict(_config().to_dict()) == _config()


def test_the_map_is_the_static_scenes(store, tmp_path):
    """The sample's map layers are traced before the objects are added: the same map as a build without
    [dynamic] (the objects do not leak into the map, and the scene is static again after the blocks)."""
    static = build_dataset(_config(dynamic=None, csi=None), tmp_path / "static", progress=False, log=lambda m: None)
    np.testing.assert_allclose(store.ckm(0)["gain_db"].values, static.ckm(0)["gain_db"].values, atol=1e-3)

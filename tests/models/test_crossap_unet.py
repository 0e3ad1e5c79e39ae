"""Cross-AP CKM inference: input tensors of eqs. (3)-(5), the UNet, training, saving, inference.

The distance-weighted benchmark (eq. (7), beta = 0.1) is checked against hand-computed weights in
tests/baselines/test_model_based.py::test_cross_ap_weights_and_limits and is not repeated here.
"""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.models.crossap.data import (Area, AreaRef, CrossApEncoding, area_example, crossap_dataset, dihedral,
                                        group_areas, load_area)

RANGE_DB = (-120.0, -20.0)


def _area(num_aps=3, size=8, seed=0) -> Area:
    """A synthetic square area: free-space-like gains of APs at random open cells, a 2 x 2 building."""
    rng = np.random.default_rng(seed)
    grid = Grid(0.0, 0.0, size, size, 2.0)
    building = np.zeros((size, size), bool)
    building[1:3, 5:7] = True
    open_cells = np.argwhere(~building)
    cells = open_cells[rng.choice(len(open_cells), num_aps, replace=False)]
    centers = grid.cell_centers_m()
    positions = np.array([[*centers[r, c, :2], 10.0] for r, c in cells])
    d = np.linalg.norm(centers[None, :, :, :2] - positions[:, None, None, :2], axis=-1)
    gain_db = np.where(building, np.nan, -40.0 - 20.0 * np.log10(np.hypot(d, 8.5))).astype(np.float32)
    ref = AreaRef("toy", 0, "train", tuple(range(num_aps)))
    return Area(ref, grid, gain_db, building, positions, cells)


# ----------------------------------------------------------------------------------------------------------
# Inputs, eqs. (3)-(5)
# ----------------------------------------------------------------------------------------------------------

def test_input_layout_and_preconvolution_on_hand_made_8x8():
    building = np.zeros((8, 8), bool)
    building[0, 0] = True
    gain_db = np.full((2, 8, 8), -70.0)          # pixel 0.5 over [-120, -20] dB
    gain_db[1] = -45.0                           # pixel 0.75
    known_cells = np.array([[2, 3], [7, 7]])
    encoding = CrossApEncoding(num_known_aps=3, weight=0.2, gain_range_db=RANGE_DB)
    x = encoding.encode((0, 4), building, gain_db, known_cells)
    assert x.shape == (8, 8, 4) and x.dtype == np.float32

    # channel 0, eq. (5): the target's one-hot map convolved with ones(3, 3), cut at the top edge (row 0)
    expected_target = np.zeros((8, 8), np.float32)
    expected_target[0:2, 3:6] = 1.0
    np.testing.assert_array_equal(x[..., 0], expected_target)

    # channels 1, 2, eq. (4): (1 - w) G_n + w M_AP,n, with G_n in pixels and buildings at 0
    expected_1 = np.full((8, 8), 0.8 * 0.5, np.float32)
    expected_1[0, 0] = 0.0
    expected_1[2, 3] += 0.2
    np.testing.assert_allclose(x[..., 1], expected_1, atol=1e-6)
    assert x[7, 7, 2] == pytest.approx(0.8 * 0.75 + 0.2) and x[3, 3, 2] == pytest.approx(0.8 * 0.75)
    # channel 3: a missing third known AP is a channel of zeros
    assert not x[..., 3].any()

    # the RadioUNet reference: target map and building map (1 open, 0 building)
    radio = CrossApEncoding(inputs="radiounet", gain_range_db=RANGE_DB).encode((0, 4), building)
    assert radio.shape == (8, 8, 2)
    np.testing.assert_array_equal(radio[..., 0], expected_target)
    np.testing.assert_array_equal(radio[..., 1], (~building).astype(np.float32))


def test_nearest_order_puts_the_known_aps_by_distance_from_the_target():
    """known_order="nearest": channel n holds the n-th nearest known AP (hand-made distances 5, 1, 3 cells;
    two APs at one distance keep the given order); "given" keeps the caller's order; a bad order is named."""
    building = np.zeros((8, 8), bool)
    gain_db = np.stack([np.full((8, 8), g) for g in (-70.0, -45.0, -95.0, -60.0)])  # pixels 0.5, 0.75, 0.25, 0.6
    known_cells = np.array([[0, 5], [0, 1], [3, 0], [0, 3]])                       # 5, 1, 3, 3 cells from (0, 0)
    nearest = CrossApEncoding(num_known_aps=4, weight=0.0, gain_range_db=RANGE_DB, known_order="nearest")
    given = CrossApEncoding(num_known_aps=4, weight=0.0, gain_range_db=RANGE_DB)
    x_nearest = nearest.encode((0, 0), building, gain_db, known_cells)
    x_given = given.encode((0, 0), building, gain_db, known_cells)
    np.testing.assert_allclose(x_nearest[0, 0, 1:], [0.75, 0.25, 0.6, 0.5], atol=1e-6)
    np.testing.assert_allclose(x_given[0, 0, 1:], [0.5, 0.75, 0.25, 0.6], atol=1e-6)
    assert CrossApEncoding.from_dict(nearest.to_dict()) == nearest
    with pytest.raises(CkmsimError, match="known_order"):
        CrossApEncoding(known_order="random")


def test_input_corner_preconvolution_and_bad_inputs():
    encoding = CrossApEncoding(num_known_aps=1, gain_range_db=RANGE_DB)
    building = np.zeros((8, 8), bool)
    x = encoding.encode((7, 7), building, np.full((1, 8, 8), -70.0), [[0, 0]])
    assert x[..., 0].sum() == 4.0 and x[6:, 6:, 0].all()
    with pytest.raises(CkmsimError, match="num_known_aps=1"):
        encoding.encode((7, 7), building, np.full((2, 8, 8), -70.0), [[0, 0], [1, 1]])
    with pytest.raises(CkmsimError, match="known_gain_db"):
        encoding.encode((7, 7), building, np.full((1, 4, 4), -70.0), [[0, 0]])
    with pytest.raises(CkmsimError, match="inputs"):
        CrossApEncoding(inputs="buildings")
    with pytest.raises(CkmsimError, match="weight"):
        CrossApEncoding(weight=1.5)


def test_every_ap_takes_its_turn_and_augmentation_is_consistent():
    area = _area(num_aps=4)
    encoding = CrossApEncoding(num_known_aps=3, gain_range_db=RANGE_DB)
    for target in range(area.num_aps):
        x, y = area_example(area, target, encoding)
        np.testing.assert_allclose(y[..., 0], encoding.gain_pixels(area.gain_db[target], area.building))
        others = [n for n in range(4) if n != target]
        for channel, n in enumerate(others, start=1):
            row, col = area.ap_cells[n]
            assert x[row, col, channel] == pytest.approx(x[..., channel].max())
        row, col = area.ap_cells[target]
        assert x[row, col, 0] == 1.0
    # random number of known APs, zero padding, and a rotation / reflection applied to x and y together
    counts = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        x, y = area_example(area, 0, encoding, rng, min_known_aps=1, augment=True)
        counts.add(int((x[..., 1:].reshape(-1, 3).any(axis=0)).sum()))
        target_pixels = encoding.gain_pixels(area.gain_db[0], area.building)[..., None]
        assert any(np.allclose(y, dihedral(target_pixels, k)) for k in range(8))
        # the target's peak sits where its transformed cell is
        assert np.isclose(x[..., 0].max(), 1.0)
    assert counts == {1, 2, 3}
    square = np.arange(9).reshape(3, 3)
    assert len({dihedral(square, k).tobytes() for k in range(8)}) == 8


# ----------------------------------------------------------------------------------------------------------
# Areas from a store and the tf.data pipeline
# ----------------------------------------------------------------------------------------------------------

def _store(path, num_areas=3, num_aps=4, size=16) -> DatasetStore:
    """A hand-made multi-AP store: ``num_areas`` tiles (train, train.., val, test) of ``num_aps`` APs each."""
    store = DatasetStore.create(path, {"config": {"ray_tracing": {"frequency_hz": 28e9}}})
    splits = (["train"] * max(1, num_areas - 2) + ["val", "test"])[:num_areas]
    for tile in range(num_areas):
        area = _area(num_aps, size, seed=tile)
        for n in range(num_aps):
            arrays = {"gain_db": (("y", "x"), area.gain_db[n]), "building": (("y", "x"), area.building),
                      "tx_position_m": (("xyz",), area.ap_positions_m[n])}
            store.append(arrays, {"id": f"toy/tile{tile:03d}/tx{n:02d}", "scene": "toy", "tile_index": tile,
                                  "tx_index": n, "split": splits[tile], "grid": area.grid.to_dict()})
    return DatasetStore.open(path)


def test_areas_group_by_tile_and_stream_lazily(tmp_path):
    store = _store(tmp_path / "toy", num_areas=3, num_aps=4, size=8)
    refs = group_areas(store)
    assert [(r.tile_index, r.split, len(r.sample_indices)) for r in refs] == [(0, "train", 4), (1, "val", 4),
                                                                              (2, "test", 4)]
    area = load_area(store, refs[1])
    expected = _area(4, 8, seed=1)
    np.testing.assert_array_equal(area.ap_cells, expected.ap_cells)
    np.testing.assert_allclose(area.gain_db, expected.gain_db)
    assert area.frequency_hz == 28e9 and refs[1].label == "toy/tile001"

    encoding = CrossApEncoding(num_known_aps=3, gain_range_db=RANGE_DB)
    batches = list(crossap_dataset(store, encoding, "val", batch_size=3, shuffle=False, randomize=False, epochs=1))
    assert [tuple(b[0].shape) for b in batches] == [(3, 8, 8, 4), (1, 8, 8, 4)]
    x, y = area_example(area, 0, encoding)
    np.testing.assert_allclose(batches[0][0][0].numpy(), x)


def test_area_in_two_splits_is_refused(tmp_path):
    store = _store(tmp_path / "toy", num_areas=1, num_aps=2, size=8)
    store.records[1]["split"] = "val"
    with pytest.raises(CkmsimError, match="several splits"):
        group_areas(store)


# ----------------------------------------------------------------------------------------------------------
# The UNet
# ----------------------------------------------------------------------------------------------------------

def test_unet_shapes_and_paper_layout():
    from ckmsim.models.crossap.network import CrossApUNet, check_input_size

    model = CrossApUNet(5, reduce_channels=4, encoder_channels=(8, 12, 16), extra_conv_levels=(1, 2), top_channels=6)
    out = model(np.zeros((2, 16, 24, 5), np.float32))
    assert tuple(out.shape) == (2, 16, 24, 1)
    names = {layer.name for layer in model.layers}
    assert {"reduce", "down1_extra", "down2_extra", "up1_extra", "up2_extra", "skip0"} <= names
    assert model.get_layer("reduce").conv.filters == 4 and model.size_multiple == 8
    check_input_size(model, (1, 16, 24, 5))
    with pytest.raises(CkmsimError, match="multiples of 8"):
        check_input_size(model, (1, 12, 16, 5))
    with pytest.raises(CkmsimError, match="extra_conv_levels"):
        CrossApUNet(5, encoder_channels=(8, 8), extra_conv_levels=(2,))

    # the paper's defaults: 80 channels in, 5x5 kernels, extra convolutions at 64x64 and 32x32 of 256x256
    paper = CrossApUNet(80)
    assert paper.kernel_size == 5 and paper.extra_conv_levels == (2, 3)
    assert paper.get_layer("down2_extra").conv.kernel_size == (5, 5)
    assert tuple(paper.compute_output_shape((1, 256, 256, 80))) == (1, 256, 256, 1)


def test_layers_config_round_trip():
    from ckmsim.models.crossap.network import ConvBlock, UpBlock

    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    for layer, shape in ((ConvBlock(4, 5, pool=True), (2, 4, 4, 4)), (ConvBlock(4, 3), (2, 8, 8, 4)),
                         (UpBlock(6), (2, 16, 16, 6))):
        out = layer(x)
        assert tuple(out.shape) == shape == tuple(layer.compute_output_shape(x.shape))
        clone = type(layer).from_config(layer.get_config())
        clone.build(x.shape)
        clone.set_weights(layer.get_weights())
        np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(out))


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    import keras

    from ckmsim.models.crossap.network import CrossApUNet

    model = CrossApUNet(4, reduce_channels=3, encoder_channels=(6, 8), extra_conv_levels=(1,), top_channels=4)
    x = np.random.default_rng(1).uniform(size=(2, 8, 8, 4)).astype(np.float32)
    before = np.asarray(model(x))
    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras")
    assert isinstance(loaded, CrossApUNet) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)


# ----------------------------------------------------------------------------------------------------------
# Training and inference
# ----------------------------------------------------------------------------------------------------------

def _train_config(tmp_path, store_path, inputs="cross_ap", epochs=4):
    text = f"""
[crossap]
dataset = "{store_path}"
out = "{tmp_path / ('run-' + inputs)}"
[encoding]
inputs = "{inputs}"
num_known_aps = 3
weight = 0.2
gain_range_db = [{RANGE_DB[0]}, {RANGE_DB[1]}]
[data]
batch_size = 4
augment = true
min_known_aps = 2
[model]
reduce_channels = 4
encoder_channels = [8, 12]
extra_conv_levels = [1]
top_channels = 8
[train]
epochs = {epochs}
learning_rate = 3e-3
seed = 0
"""
    path = tmp_path / f"train-{inputs}.toml"
    path.write_text(text)
    return path


def test_a_few_steps_lower_the_loss_and_the_run_predicts(tmp_path):
    from ckmsim.models.crossap.method import CrossApUNetMethod
    from ckmsim.models.crossap.train import train_crossap

    store = _store(tmp_path / "toy", num_areas=4, num_aps=4, size=16)
    result = train_crossap(_train_config(tmp_path, store.path), log=lambda *a: None)
    losses = [row["loss"] for row in result.history]
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    assert "val_loss" in result.history[-1]
    info = json.loads((result.out / "crossap.json").read_text())
    assert info["num_train_examples"] == 8 and info["encoding"]["num_known_aps"] == 3

    method = CrossApUNetMethod.from_run(result.out)
    area = load_area(store, group_areas(store, "test")[0])
    # 3 known APs infer the 4th; a single target gives one map, two targets a stack
    one = method.predict_gain_db(area.grid, area.building, area.ap_positions_m[3], area.gain_db[:3],
                                 area.ap_positions_m[:3])
    two = method.predict_gain_db(area.grid, area.building, area.ap_positions_m[2:], area.gain_db[:2],
                                 area.ap_positions_m[:2])
    assert one.shape == (16, 16) and two.shape == (2, 16, 16)
    assert np.isnan(one[area.building]).all()
    assert np.nanmin(one) >= RANGE_DB[0] and np.nanmax(one) <= RANGE_DB[1]
    # more known APs than channels: the nearest three to a new site (one cell from AP 0, towards the centre) are used
    inwards = -np.sign(area.ap_positions_m[0, 0] - area.grid.center_x_m) or 1.0
    site = area.ap_positions_m[0] + np.array([inwards * area.grid.cell_size_m, 0.0, 0.0])
    many = method.predict_gain_db(area.grid, area.building, site, area.gain_db, area.ap_positions_m)
    nearest = np.argsort(np.linalg.norm(area.ap_positions_m[:, :2] - site[:2], axis=1))[:3]
    keep = np.sort(nearest)
    again = method.predict_gain_db(area.grid, area.building, site, area.gain_db[keep], area.ap_positions_m[keep])
    np.testing.assert_array_equal(many, again)


def test_train_config_names_bad_keys(tmp_path):
    from ckmsim.models.crossap.train import load_crossap_train_config

    path = _train_config(tmp_path, tmp_path / "nowhere")
    config = load_crossap_train_config(path)
    assert config.encoding.num_input_channels == 4 and config.settings.learning_rate == 3e-3
    assert config.model["encoder_channels"] == (8, 12)
    path.write_text(path.read_text().replace("augment = true", "augmentation = true"))
    with pytest.raises(CkmsimError, match="augmentation"):
        load_crossap_train_config(path)
    path.write_text(path.read_text().replace("augmentation = true", "").replace("epochs = 4", "epochs = 0"))
    with pytest.raises(CkmsimError, match="epochs"):
        load_crossap_train_config(path)


def test_cross_ap_method_refuses_the_targets_own_map_among_the_known_aps():
    """The target's own map would give the network the answer; any other known AP is accepted."""
    from ckmsim.models.crossap.method import CrossApUNetMethod
    from ckmsim.models.crossap.network import CrossApUNet

    encoding = CrossApEncoding(num_known_aps=2, weight=0.2, gain_range_db=RANGE_DB)
    model = CrossApUNet(encoding.num_input_channels, reduce_channels=3, encoder_channels=(6, 8),
                        extra_conv_levels=(1,), top_channels=4)
    method = CrossApUNetMethod(model, encoding)
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=8, num_y=8, cell_size_m=2.0)
    building = np.zeros((8, 8), dtype=bool)
    maps = np.full((2, 8, 8), -80.0)
    target = (1.0, 3.0, 10.0)
    with pytest.raises(CkmsimError, match="Known AP 1 stands at the target position"):
        method.predict_gain_db(grid, building, target, maps, np.array([[-5.0, -5.0, 10.0], [1.0, 3.0, 10.0]]))
    with pytest.raises(CkmsimError, match="Known AP 0"):
        method.predict_gain_db(grid, building, target, maps, np.array([[1.0, 3.0], [-5.0, -5.0]]))
    gain_db = method.predict_gain_db(grid, building, target, maps, np.array([[-5.0, -5.0, 10.0], [1.0, 3.0, 25.0]]))
    assert gain_db.shape == (8, 8) and np.all(np.isfinite(gain_db))


# ----------------------------------------------------------------------------------------------------------
# Issue 14: physics channels, the correction to eq. (7), the masked loss
# ----------------------------------------------------------------------------------------------------------

def test_free_space_gain_closed_form():
    from ckmsim.models.crossap.physics import free_space_gain_db, free_space_map_db

    # 20 log10(lambda / (4 pi d)) at 28 GHz: lambda = 10.7069 mm; d = 10 m -> -81.39 dB, 6 dB less per doubling
    assert free_space_gain_db(10.0, 28e9) == pytest.approx(-81.391, abs=1e-3)
    assert free_space_gain_db(20.0, 28e9) - free_space_gain_db(10.0, 28e9) == pytest.approx(-6.0206, abs=1e-4)
    grid = Grid(0.0, 0.0, 4, 4, 2.0, height_m=1.5)
    # an AP 8.5 m above the UE plane, straight above cell (1, 1) (centre (-1, -1)): d = 8.5 m there
    fs = free_space_map_db(grid, (-1.0, -1.0, 10.0), 28e9)
    assert fs[1, 1] == pytest.approx(free_space_gain_db(8.5, 28e9)) and fs[1, 1] == fs.max()
    assert fs[3, 3] == pytest.approx(free_space_gain_db(np.sqrt(4.0 ** 2 + 4.0 ** 2 + 8.5 ** 2), 28e9))
    with pytest.raises(CkmsimError, match="frequency_hz"):
        free_space_gain_db(10.0, 0.0)
    with pytest.raises(CkmsimError, match=r"\(x, y, z\)"):
        free_space_map_db(grid, (0.0, 0.0), 28e9)


def test_blockage_length_through_hand_made_walls():
    from ckmsim.models.crossap.physics import blockage_map

    building = np.zeros((7, 7), bool)
    building[:, 2] = True            # a wall along column 2 (one 2 m cell thick)
    building[:, 5] = True            # and along column 5
    length = blockage_map(building, (3, 0), cell_size_m=2.0)
    # left of the first wall: line of sight
    assert (length[:, :2] == 0).all()
    # straight along row 3: 2 m through each wall; ending at the centre of a wall cell: 1 m inside it;
    # towards (0, 4): 3 cells up, 4 across, the wall slab (1.5 <= col < 2.5) takes 1/4 of the 10 m segment.
    # Sampling errs by about a sample's length per wall face (12 m / 128 at most) and vanishes with more samples.
    for samples, tol in ((128, 0.1), (4096, 0.01)):
        length = blockage_map(building, (3, 0), cell_size_m=2.0, samples=samples)
        assert length[3, 4] == pytest.approx(2.0, abs=tol) and length[3, 6] == pytest.approx(4.0, abs=tol)
        assert length[3, 2] == pytest.approx(1.0, abs=tol) and length[0, 4] == pytest.approx(2.5, abs=tol)
    # no building: line of sight everywhere
    assert not blockage_map(np.zeros((5, 5), bool), (2, 2)).any()


def test_excess_weighting_recovers_a_shared_shadow_exactly():
    """Known maps = free space + the same shadowing s(cell): eq. (7) on excess loss returns the target's free
    space + s exactly, while plain eq. (7) does not (its peaks sit at the known APs)."""
    from ckmsim.models.crossap.physics import free_space_map_db, physics_maps

    grid = Grid(0.0, 0.0, 8, 8, 2.0, height_m=1.5)
    building = np.zeros((8, 8), bool)
    building[0, :3] = True
    shadow = -np.linspace(0.0, 20.0, 64).reshape(8, 8)
    known = np.array([[-5.0, -5.0, 10.0], [5.0, 3.0, 12.0], [1.0, 7.0, 10.0]])
    target = np.array([-3.0, 5.0, 10.0])
    maps = np.stack([free_space_map_db(grid, p, 28e9) + shadow for p in known])
    maps[:, building] = np.nan
    out = physics_maps(grid, building, target, maps, known, 28e9, (-170.0, -20.0))
    expected = free_space_map_db(grid, target, 28e9) + shadow
    np.testing.assert_allclose(out["excess_weighted"][~building], expected[~building], atol=1e-9)
    assert np.isnan(out["excess_weighted"][building]).all()
    assert np.max(np.abs(out["distance_weighted"] - expected)[~building]) > 3.0


def _physics_area():
    area = _area(num_aps=5, size=16, seed=3)
    return area, CrossApEncoding(num_known_aps=4, weight=0.2, gain_range_db=RANGE_DB, physics=True,
                                 frequency_hz=28e9)


def test_untrained_correction_network_is_exactly_distance_weighting():
    """The residual UNet before any training returns the distance-weighted benchmark's own map (eq. (7),
    the study's clipping), cell for cell; a non-zero last convolution moves it away."""
    from ckmsim.baselines.model_based import distance_weighted_cross_ap
    from ckmsim.models.crossap.method import CrossApUNetMethod
    from ckmsim.models.crossap.network import CrossApUNet

    area, encoding = _physics_area()
    assert encoding.num_input_channels == 4 + 1 + 6 and encoding.residual_channel == 5
    model = CrossApUNet(encoding.num_input_channels, reduce_channels=3, encoder_channels=(6, 8),
                        extra_conv_levels=(1,), top_channels=4, residual_channel=encoding.residual_channel)
    method = CrossApUNetMethod(model, encoding)
    open_cells = ~area.building
    for target, known in ((0, [1, 2, 3, 4]), (4, [0, 2])):
        inferred = method.predict_gain_db(area.grid, area.building, area.ap_positions_m[target],
                                          area.gain_db[known], area.ap_positions_m[known])
        benchmark = distance_weighted_cross_ap(np.clip(area.gain_db[known], *RANGE_DB),
                                               area.ap_positions_m[known, :2], area.ap_positions_m[target, :2])
        np.testing.assert_allclose(inferred[open_cells], np.clip(benchmark, *RANGE_DB)[open_cells], atol=1e-4)
        assert np.isnan(inferred[area.building]).all()
    correction = model.get_layer("correction")
    kernel, bias = correction.get_weights()
    correction.set_weights([kernel, bias + 0.05])
    moved = method.predict_gain_db(area.grid, area.building, area.ap_positions_m[0], area.gain_db[1:],
                                   area.ap_positions_m[1:])
    benchmark = distance_weighted_cross_ap(np.clip(area.gain_db[1:], *RANGE_DB), area.ap_positions_m[1:, :2],
                                           area.ap_positions_m[0, :2])
    assert np.nanmax(np.abs(moved - np.clip(benchmark, *RANGE_DB))) > 1.0
    with pytest.raises(CkmsimError, match="residual_channel"):
        CrossApUNet(4, encoder_channels=(6, 8), extra_conv_levels=(), residual_channel=4)
    with pytest.raises(CkmsimError, match="frequency_hz"):
        CrossApEncoding(physics=True)
    with pytest.raises(CkmsimError, match="inputs='cross_ap'"):
        CrossApEncoding(inputs="radiounet", physics=True, frequency_hz=28e9)
    with pytest.raises(CkmsimError, match=r"\(x, y, z\)"):
        method.predict_gain_db(area.grid, area.building, area.ap_positions_m[0, :2], area.gain_db[1:],
                               area.ap_positions_m[1:, :2])


def test_physics_channels_layout_and_symmetry():
    from ckmsim.models.crossap.physics import blockage_map

    area, encoding = _physics_area()
    x, _ = area_example(area, 0, encoding)
    first = encoding.residual_channel
    np.testing.assert_array_equal(x[..., first + 3], (~area.building).astype(np.float32))
    blocked = blockage_map(area.building, area.ap_cells[0], area.grid.cell_size_m)
    np.testing.assert_array_equal(x[..., first + 4], (blocked == 0).astype(np.float32))
    # free space peaks at the target's cell
    assert np.unravel_index(np.argmax(x[..., first + 1]), x.shape[:2]) == tuple(area.ap_cells[0])
    # eqs. (3)-(7), free space and blockage commute with the 8 symmetries of the square area: an augmented
    # example's input is the transformed input of the same draw of known APs
    for seed in range(4):
        plain, _ = area_example(area, 1, encoding, np.random.default_rng(seed), min_known_aps=2, augment=False)
        augmented, _ = area_example(area, 1, encoding, np.random.default_rng(seed), min_known_aps=2, augment=True)
        assert any(np.allclose(augmented, dihedral(plain, s), atol=1e-6) for s in range(8))


def test_masked_loss_targets_and_value():
    from ckmsim.models.crossap.network import masked_mse

    area = _area(num_aps=3, size=8)
    area.gain_db[0, 4, 4] = -300.0           # a cell no ray reached: below the range
    encoding = CrossApEncoding(num_known_aps=2, gain_range_db=RANGE_DB)
    _, y_open = area_example(area, 0, encoding, loss_cells="open")
    _, y_reached = area_example(area, 0, encoding, loss_cells="reached")
    np.testing.assert_array_equal(y_open[..., 1], (~area.building).astype(np.float32))
    assert y_reached[4, 4, 1] == 0 and y_reached[..., 1].sum() == y_open[..., 1].sum() - 1
    with pytest.raises(CkmsimError, match="loss_cells"):
        area_example(area, 0, encoding, loss_cells="ray")
    # hand-made: errors 0.1 and 0.3 on the two weighted cells, 5.0 on the unweighted one -> (0.01 + 0.09) / 2
    y_true = np.zeros((1, 1, 3, 2), np.float32)
    y_true[0, 0, :, 1] = [1.0, 1.0, 0.0]
    y_pred = np.array([0.1, -0.3, 5.0], np.float32).reshape(1, 1, 3, 1)
    assert float(np.asarray(masked_mse(y_true, y_pred))[0]) == pytest.approx(0.05, rel=1e-6)


def test_an_ap_at_the_targets_site_is_never_known():
    """Two APs of a dense area can share a site: the other's map is the target's (up to ray noise), so it is
    never among the known APs when the target is inferred, in training or at test time."""
    from dataclasses import replace

    from ckmsim.models.crossap.data import other_aps

    area = _area(num_aps=4, size=8, seed=2)
    positions = area.ap_positions_m.copy()
    positions[3] = positions[1]
    cells = area.ap_cells.copy()
    cells[3] = cells[1]
    area = replace(area, ap_positions_m=positions, ap_cells=cells)
    assert other_aps(area, 1) == [0, 2] and other_aps(area, 3) == [0, 2] and other_aps(area, 0) == [1, 2, 3]
    encoding = CrossApEncoding(num_known_aps=3, gain_range_db=RANGE_DB)
    for seed in range(6):
        x, _ = area_example(area, 1, encoding, np.random.default_rng(seed), min_known_aps=1)
        # AP 3's feature map would peak at the target's own cell: no channel does
        row, col = cells[1]
        assert not np.any(np.isclose(x[row, col, 1:], x[..., 1:].max(axis=(0, 1))) & x[..., 1:].any(axis=(0, 1)))


# ----------------------------------------------------------------------------------------------------------
# Per-cell pooling of the known APs (ap_features)
# ----------------------------------------------------------------------------------------------------------

def _walled_area():
    """A 16 x 16 area cut in two by a wall along column 8; target 0 and AP 1 left of it, AP 2 right."""
    grid = Grid(0.0, 0.0, 16, 16, 2.0)
    building = np.zeros((16, 16), bool)
    building[:, 8] = True
    cells = np.array([[3, 2], [12, 5], [6, 13]])
    centers = grid.cell_centers_m()
    positions = np.array([[*centers[r, c, :2], 10.0] for r, c in cells])
    rng = np.random.default_rng(5)
    gain_db = np.where(building, np.nan, rng.uniform(-110.0, -40.0, size=(3, 16, 16))).astype(np.float32)
    return Area(AreaRef("walled", 0, "test", (0, 1, 2)), grid, gain_db, building, positions, cells)


def test_known_ap_features_against_hand_geometry_and_friis():
    from ckmsim.models.crossap.data import AP_FEATURES, NUM_AP_FEATURES

    area = _walled_area()
    encoding = CrossApEncoding(num_known_aps=3, gain_range_db=RANGE_DB, physics=True, frequency_hz=28e9,
                               ap_features=True, known_order="nearest")
    assert encoding.num_input_channels == 3 + 1 + 6 + 3 * NUM_AP_FEATURES
    x, _ = area_example(area, 0, encoding)
    first = encoding.ap_first_channel
    slots = x[..., first:].reshape(16, 16, 3, NUM_AP_FEATURES)
    feature = {name: slots[..., AP_FEATURES.index(name)] for name in AP_FEATURES}
    open_cells = ~area.building
    left, right = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    left[:, :8], right[:, 9:] = True, True
    # nearest first: AP 1 (9.5 cells away) in slot 0, AP 2 (11.4 cells) in slot 1, slot 2 empty
    np.testing.assert_array_equal(feature["valid"][..., :2], np.repeat(open_cells[..., None], 2, axis=-1))
    assert not slots[..., 2, :].any()
    # the wall hides the other half from every AP: line of sight exactly on the AP's own side
    np.testing.assert_array_equal(feature["los"][..., 0], left.astype(np.float32))
    np.testing.assert_array_equal(feature["los"][..., 1], right.astype(np.float32))
    np.testing.assert_array_equal(feature["target_los"][..., 1], left.astype(np.float32))
    assert feature["blockage"][..., 0][right].min() > 0 and feature["blockage"][..., 0][left].max() == 0
    # transferred = the target's free-space gain + AP 1's excess loss, Friis by hand at one cell
    wavelength = 299_792_458.0 / 28e9
    row, col = 10, 11
    cell = area.grid.cell_centers_m()[row, col]
    friis = [20 * np.log10(wavelength / (4 * np.pi * np.linalg.norm(cell - area.ap_positions_m[n]))) for n in (0, 1)]
    expected_db = friis[0] + np.clip(area.gain_db[1, row, col], *RANGE_DB) - friis[1]
    expected_pixel = np.clip((expected_db - RANGE_DB[0]) / (RANGE_DB[1] - RANGE_DB[0]), 0, 1)
    np.testing.assert_allclose(feature["transferred"][row, col, 0], expected_pixel, atol=1e-5)
    # distances over 64 m: AP-to-target the same at every open cell, AP-to-cell by hand
    ap_target_m = np.hypot(*(area.ap_positions_m[1, :2] - area.ap_positions_m[0, :2]))
    np.testing.assert_allclose(feature["ap_distance"][..., 0][open_cells], ap_target_m / 64.0, rtol=1e-6)
    np.testing.assert_allclose(feature["cell_distance"][row, col, 1],
                               np.hypot(*(cell[:2] - area.ap_positions_m[2, :2])) / 64.0, rtol=1e-6)
    assert not slots[area.building].any()
    with pytest.raises(CkmsimError, match="physics=True"):
        CrossApEncoding(ap_features=True)


def test_known_ap_pooling_ignores_slot_order_and_empty_slots():
    """The pooling is a function of the set of valid slots: permuting slots or filling an empty slot with
    junk changes nothing; identical slots pool to their own transferred value (weights sum to one)."""
    from ckmsim.models.crossap.network import KnownApPooling

    rng = np.random.default_rng(2)
    num_slots, num_features = 4, 5
    slots = rng.uniform(size=(2, 6, 6, num_slots, num_features)).astype(np.float32)
    slots[..., 0] = 1.0
    slots[..., 3, :] = 0.0          # slot 3 empty
    layer = KnownApPooling(num_slots, num_features, hidden_channels=8, pooled_channels=3)
    flat = lambda s: s.reshape(2, 6, 6, num_slots * num_features)  # noqa: E731
    out = np.asarray(layer(flat(slots)))
    assert out.shape == (2, 6, 6, 7)
    permuted = np.asarray(layer(flat(slots[..., [2, 0, 3, 1], :])))
    np.testing.assert_allclose(permuted, out, atol=1e-6)
    junk = slots.copy()
    junk[..., 3, 1:] = rng.uniform(-5, 5, size=junk[..., 3, 1:].shape)
    np.testing.assert_allclose(np.asarray(layer(flat(junk))), out, atol=1e-6)
    same = np.repeat(slots[..., :1, :], num_slots, axis=-2)
    np.testing.assert_allclose(np.asarray(layer(flat(same)))[..., -1], same[..., 0, 1], atol=1e-6)
    clone = KnownApPooling.from_config(layer.get_config())
    clone.build(flat(slots).shape)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(flat(slots))), out)


def test_untrained_pooling_network_is_distance_weighting_and_round_trips(tmp_path):
    import keras

    from ckmsim.baselines.model_based import distance_weighted_cross_ap
    from ckmsim.models.crossap.data import NUM_AP_FEATURES
    from ckmsim.models.crossap.method import CrossApUNetMethod
    from ckmsim.models.crossap.network import CrossApUNet

    area = _area(num_aps=5, size=16, seed=3)
    encoding = CrossApEncoding(num_known_aps=4, gain_range_db=RANGE_DB, physics=True, frequency_hz=28e9,
                               ap_features=True)
    model = CrossApUNet(encoding.num_input_channels, reduce_channels=3, encoder_channels=(6, 8),
                        extra_conv_levels=(1,), top_channels=4, residual_channel=encoding.residual_channel,
                        ap_slots=4, ap_features=NUM_AP_FEATURES, ap_first_channel=encoding.ap_first_channel,
                        ap_hidden_channels=8, ap_pooled_channels=4)
    method = CrossApUNetMethod(model, encoding)
    known = [1, 3]
    inferred = method.predict_gain_db(area.grid, area.building, area.ap_positions_m[0], area.gain_db[known],
                                      area.ap_positions_m[known])
    benchmark = distance_weighted_cross_ap(np.clip(area.gain_db[known], *RANGE_DB), area.ap_positions_m[known, :2],
                                           area.ap_positions_m[0, :2])
    open_cells = ~area.building
    np.testing.assert_allclose(inferred[open_cells], np.clip(benchmark, *RANGE_DB)[open_cells], atol=1e-4)
    x = np.stack([area_example(area, t, encoding)[0] for t in (0, 2)])
    model.get_layer("correction").set_weights([w + 0.01 for w in model.get_layer("correction").get_weights()])
    before = np.asarray(model(x))
    model.save(tmp_path / "pooled.keras")
    loaded = keras.saving.load_model(tmp_path / "pooled.keras")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)
    with pytest.raises(CkmsimError, match="ap_first_channel"):
        CrossApUNet(encoding.num_input_channels, encoder_channels=(6, 8), extra_conv_levels=(), ap_slots=3,
                    ap_features=NUM_AP_FEATURES, ap_first_channel=encoding.ap_first_channel)


def test_symmetrised_inference_is_equivariant_and_untrained_still_distance_weighting():
    """With ``symmetries=8`` the method averages the network over the 8 rotations / reflections of the area
    and maps each view back: (a) its output on a turned or flipped input is the turned or flipped output, for
    a network that is not equivariant itself (random asymmetric kernels: without the averaging the same check
    fails); (b) the untrained correction network, whose output is its residual input channel, still returns
    that channel cell for cell (a wrong inverse would scramble it); (c) an ensemble is the mean of its
    networks' pixels."""
    import keras

    from ckmsim.models.crossap.method import CrossApUNetMethod
    from ckmsim.models.crossap.network import CrossApUNet

    area, encoding = _physics_area()
    channels = encoding.num_input_channels
    rng = np.random.default_rng(5)

    def asymmetric_model(seed):
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((16, 16, channels))
        hidden = keras.layers.Conv2D(4, 3, padding="same", activation="tanh")(inputs)
        return keras.Model(inputs, keras.layers.Conv2D(1, (3, 2), padding="same")(hidden))

    x = rng.normal(size=(2, 16, 16, channels)).astype(np.float32)
    plain = CrossApUNetMethod(asymmetric_model(0), encoding)
    symmetric = CrossApUNetMethod(plain.model, encoding, symmetries=8)
    base, base_plain = symmetric.predict_pixels(x), plain.predict_pixels(x)
    for k in range(1, 8):
        turned = np.stack([dihedral(m, k) for m in x])
        expected = np.stack([dihedral(m, k) for m in base])
        np.testing.assert_allclose(symmetric.predict_pixels(turned), expected, atol=1e-5)
        assert np.abs(plain.predict_pixels(turned) - np.stack([dihedral(m, k) for m in base_plain])).max() > 1e-3

    untrained = CrossApUNet(channels, reduce_channels=3, encoder_channels=(6, 8), extra_conv_levels=(1,),
                            top_channels=4, residual_channel=encoding.residual_channel)
    examples = np.stack([area_example(area, t, encoding)[0] for t in (0, 3)])
    np.testing.assert_allclose(CrossApUNetMethod(untrained, encoding, symmetries=8).predict_pixels(examples),
                               examples[..., encoding.residual_channel], atol=1e-5)

    other = asymmetric_model(1)
    ensemble = CrossApUNetMethod(plain.model, encoding, extra_models=[other])
    mean = 0.5 * (np.asarray(plain.model(x))[..., 0] + np.asarray(other(x))[..., 0])
    np.testing.assert_allclose(ensemble.predict_pixels(x), mean, atol=1e-6)
    with pytest.raises(CkmsimError, match="symmetries"):
        CrossApUNetMethod(plain.model, encoding, symmetries=4)
    with pytest.raises(CkmsimError, match="square"):
        symmetric.predict_pixels(x[:, :, :8])


# ----------------------------------------------------------------------------------------------------------
# Visibility order and detour (visibility)
# ----------------------------------------------------------------------------------------------------------

def _corridor(turns: int) -> np.ndarray:
    """A 10 x 10 block of buildings with a one-cell corridor: row 0, then column 9 (turns >= 1), then row 9
    back to column 0 (turns >= 2)."""
    building = np.ones((10, 10), bool)
    building[0, :] = False
    if turns >= 1:
        building[:, 9] = False
    if turns >= 2:
        building[9, :] = False
    return building


def test_visibility_order_and_detour_in_corridors_by_hand():
    """From an AP at (0, 0), a corridor that turns once and twice: the cells behind each corner are of order
    1 and 2, and the detour is the length along the corridor minus the straight line (2 m cells)."""
    from ckmsim.models.crossap.physics import detour_map, visibility_order_map

    straight = _corridor(0)
    assert not visibility_order_map(straight, (0, 0))[0].any()
    assert not detour_map(straight, (0, 0), 2.0).any()

    once = _corridor(1)
    order = visibility_order_map(once, (0, 0))
    np.testing.assert_array_equal(order[0], 0)
    np.testing.assert_array_equal(order[2:, 9], 1)       # (1, 9) is seen past the corner cell
    detour = detour_map(once, (0, 0), 2.0)
    # (0, 0) -> (0, 8) -> (1, 9) -> (9, 9), the corner cut between cell centres that see each other:
    # 8 + sqrt(2) + 8 cells against 9 * sqrt(2)
    assert detour[9, 9] == pytest.approx(2.0 * (16.0 + np.sqrt(2.0) - 9.0 * np.sqrt(2.0)), rel=1e-6)
    assert detour[once].max() == 0.0 and detour[0].max() == 0.0

    twice = _corridor(2)
    order = visibility_order_map(twice, (0, 0))
    np.testing.assert_array_equal(order[9, :9], 2)
    assert order[9, 9] == 1
    detour = detour_map(twice, (0, 0), 2.0)
    # (0, 0) -> (0, 8) -> (1, 9) -> (8, 9) -> (9, 8) -> (9, 0): 8 + 7 + 8 cells and two corner cuts, against 9
    assert detour[9, 0] == pytest.approx(2.0 * (23.0 + 2.0 * np.sqrt(2.0) - 9.0), rel=1e-6)
    # above max_order every cell shares max_order + 1, buildings included
    capped = visibility_order_map(twice, (0, 0), max_order=1)
    np.testing.assert_array_equal(capped[9, :9], 2)
    assert (capped[twice] == 2).all()
    with pytest.raises(CkmsimError, match="max_order"):
        visibility_order_map(twice, (0, 0), max_order=-1)


def _brute_force_orders_and_paths(building, ap_cell, max_order):
    """The same quantities from blockage_map alone: breadth-first over cells that see each other, and a
    Dijkstra with a binary heap over the same legs."""
    import heapq

    from ckmsim.models.crossap.physics import blockage_map

    cells = [tuple(c) for c in np.argwhere(~building)]
    sees = {c: blockage_map(building, c) == 0 for c in cells}
    order = np.full(building.shape, max_order + 1)
    frontier = [c for c in cells if blockage_map(building, ap_cell)[c] == 0]
    seen = set(frontier)
    for k in range(max_order + 1):
        for c in frontier:
            order[c] = k
        frontier = [c for c in cells if c not in seen and any(sees[v][c] for v in frontier)]
        seen |= set(frontier)
    best = {c: np.hypot(*np.subtract(c, ap_cell)) for c in cells if blockage_map(building, ap_cell)[c] == 0}
    heap = [(d, c) for c, d in best.items()]
    heapq.heapify(heap)
    done = set()
    while heap:
        d, c = heapq.heappop(heap)
        if c in done:
            continue
        done.add(c)
        for v in cells:
            if v != c and sees[c][v]:
                candidate = d + np.hypot(*np.subtract(v, c))
                if candidate < best.get(v, np.inf):
                    best[v] = candidate
                    heapq.heappush(heap, (candidate, v))
    return order, best


def test_visibility_order_and_detour_match_brute_force_on_random_blocks():
    from ckmsim.models.crossap.physics import detour_map, visibility_order_map

    rng = np.random.default_rng(7)
    building = rng.uniform(size=(12, 12)) < 0.35
    open_cells = np.argwhere(~building)
    for ap_cell in open_cells[rng.choice(len(open_cells), 3, replace=False)]:
        ap_cell = tuple(int(v) for v in ap_cell)
        expected_order, paths = _brute_force_orders_and_paths(building, ap_cell, max_order=2)
        np.testing.assert_array_equal(visibility_order_map(building, ap_cell, max_order=2)[~building],
                                      expected_order[~building])
        detour = detour_map(building, ap_cell, 1.0)
        for cell, length in paths.items():
            assert detour[cell] == pytest.approx(max(length - np.hypot(*np.subtract(cell, ap_cell)), 0.0), abs=1e-5)
        # cells no path reaches carry the map's largest detour
        unreached = [tuple(c) for c in open_cells if tuple(c) not in paths]
        assert all(detour[c] == pytest.approx(detour[~building].max()) for c in unreached)


def test_visibility_channels_layout_and_symmetry():
    from ckmsim.models.crossap.data import VISIBILITY_AP_FEATURES

    area = _walled_area()
    # a door through the wall, so that the far side has orders 1..2 and finite detours
    building = area.building.copy()
    building[0:2, 8] = False
    from dataclasses import replace

    area = replace(area, building=building)
    encoding = CrossApEncoding(num_known_aps=2, gain_range_db=RANGE_DB, physics=True, frequency_hz=28e9,
                               ap_features=True, visibility=True)
    plain = CrossApEncoding(num_known_aps=2, gain_range_db=RANGE_DB, physics=True, frequency_hz=28e9,
                            ap_features=True)
    assert encoding.num_input_channels == plain.num_input_channels + 2 + 2 * len(VISIBILITY_AP_FEATURES)
    x, _ = area_example(area, 0, encoding)
    rest = encoding.residual_channel + 6
    order, detour = x[..., rest], x[..., rest + 1]
    # order 0 and no detour exactly where the target sees the cell (the line-of-sight channel); the rest of
    # the far half lies behind the door
    los = x[..., rest - 2] == 1
    assert order[los].max() == 0 and detour[los].max() == 0
    hidden = ~los & ~building
    assert hidden[:, 9:].sum() > 50 and order[hidden].min() > 0 and detour[hidden].min() > 0
    assert not order[building].any() and not detour[building].any()
    slots = x[..., encoding.ap_first_channel:].reshape(16, 16, 2, encoding.num_ap_features)
    names = encoding.ap_feature_names
    # slot 1 is AP 2, right of the wall: its order is 0 on its own side
    assert slots[:, 9:, 1, names.index("order")].max() == 0 and slots[:, :8, 1, names.index("order")].max() > 0
    # the extra channels commute with the 8 symmetries of the square area too
    for seed in range(3):
        untouched, _ = area_example(area, 1, encoding, np.random.default_rng(seed), min_known_aps=1)
        turned, _ = area_example(area, 1, encoding, np.random.default_rng(seed), min_known_aps=1, augment=True)
        assert any(np.allclose(turned, dihedral(untouched, s), atol=1e-5) for s in range(8))
    with pytest.raises(CkmsimError, match="visibility=True"):
        CrossApEncoding(visibility=True)

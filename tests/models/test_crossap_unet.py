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
from ckmsim.models.crossap_data import (Area, AreaRef, CrossApEncoding, area_example, crossap_dataset, dihedral,
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
    from ckmsim.models.crossap_unet import CrossApUNet, check_input_size

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
    from ckmsim.models.crossap_unet import ConvBlock, UpBlock

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

    from ckmsim.models.crossap_unet import CrossApUNet

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
    from ckmsim.models.crossap_method import CrossApUNetMethod
    from ckmsim.models.crossap_train import train_crossap

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
    from ckmsim.models.crossap_train import load_crossap_train_config

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
    from ckmsim.models.crossap_method import CrossApUNetMethod
    from ckmsim.models.crossap_unet import CrossApUNet

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

"""E-SRResNet: the paper's architecture, its layers, its tensors, training, save/load, and the Method face."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm, validate_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import pixel_to_angle_deg, pixel_to_gain_db

keras = pytest.importorskip("keras")

from ckmsim.models.esrresnet.network import (ESRResNet, MultiHeadSelfAttention, MultiScaleFusion, ResidualBlock,  # noqa: E402
                                     Upsample, build_esrresnet, load_esrresnet)
from ckmsim.models.esrresnet.data import (LowResPathEncoder, decode_path_maps, dihedral_ckm,  # noqa: E402
                                          SPEED_OF_LIGHT_M_S, encode_store, free_space_gain_db,
                                          friis_los_map, pairs_dataset)
from ckmsim.models.esrresnet.method import ESRResNetMethod  # noqa: E402

N = 16
FREQUENCY_HZ = 28e9
BS_CELL = (5, 4)


def _truth(rng, n: int = N, bs_cell=BS_CELL) -> "xarray.Dataset":  # noqa: F821
    """A synthetic two-path CKM: free-space primary path (LoS) west of a building block, NLoS behind it."""
    grid = Grid(0.0, 0.0, n, n, 2.0, 1.5)
    building = np.zeros(grid.shape, dtype=bool)
    building[2:5, 9:12] = True
    bs = np.array([grid.x_m[bs_cell[1]], grid.y_m[bs_cell[0]], 10.0])
    centres = grid.cell_centers_m()
    distance = np.linalg.norm(centres - bs, axis=-1)
    los = centres[..., 0] < grid.x_m[8]
    primary = np.where(los, free_space_gain_db(distance, FREQUENCY_HZ), -120.0 - 0.3 * distance)
    primary = primary + np.where(los, 0.0, rng.normal(0, 1, grid.shape))
    path_gain = np.stack([primary, primary - 8.0 - rng.uniform(0, 3, grid.shape)])
    path_gain[:, building] = GAIN_FLOOR_DB
    toward_bs = np.degrees(np.arctan2(bs[1] - centres[..., 1], bs[0] - centres[..., 0]))
    az = np.stack([toward_bs, toward_bs + rng.uniform(-60, 60, grid.shape)])
    el = np.stack([np.full(grid.shape, 5.0), np.full(grid.shape, -3.0)])
    az = np.where(building, np.nan, wrap_deg(az))
    el = np.where(building, np.nan, el)
    gain = 10 * np.log10(np.sum(10 ** (path_gain / 10), axis=0))
    variables = {"gain_db": np.where(building, np.nan, gain), "building": building, "los": los & ~building,
                 "path_gain_db": path_gain, "aoa_az_deg": az, "aoa_el_deg": el}
    return make_ckm(grid, variables, {"scene": "synthetic", "frequency_hz": FREQUENCY_HZ,
                                      "bs_position_m": [float(v) for v in bs]})


def _tiny(num_input_channels: int = 5, **overrides) -> ESRResNet:
    keras.utils.set_random_seed(0)
    arguments = {"num_blocks": 2, "filters": 8, "fusion_after": (1,), "head_kernel_size": 3, **overrides}
    return build_esrresnet(None, num_input_channels=num_input_channels, **arguments)


# ------------------------------------------------------------------------------------------------------
# The paper's networks
# ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_models():
    return {name: build_esrresnet(name) for name in ("esrresnet_primary", "esrresnet_secondary", "srresnet_primary")}


@pytest.mark.parametrize("name, channels, blocks, filters", [("esrresnet_primary", 5, 16, 64),
                                                             ("esrresnet_secondary", 4, 18, 128)])
def test_path_models_map_lowres_inputs_to_twice_the_size(paper_models, name, channels, blocks, filters):
    model = paper_models[name]
    x = np.random.default_rng(0).random((1, 8, 8, channels), dtype=np.float32)
    assert model(x).shape == (1, 16, 16, 2)
    assert model.input_shape == (None, None, None, channels)
    residual = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
    assert len(residual) == blocks and all(block.filters == filters for block in residual)


@pytest.mark.parametrize("name, blocks", [("esrresnet_primary", 16), ("esrresnet_secondary", 18)])
def test_attention_in_every_block_and_fusion_after_blocks_4_8_12(paper_models, name, blocks):
    names = [layer.name for layer in paper_models[name].layers]
    for block in range(1, blocks + 1):
        layer = paper_models[name].get_layer(f"residual_block_{block}")
        assert isinstance(layer.attention, MultiHeadSelfAttention)
        assert layer.attention.num_heads == 4 and layer.attention.mode == "global"
    fusions = [n for n in names if n.startswith("msff")]
    assert fusions == ["msff_after_block_4", "msff_after_block_8", "msff_after_block_12"]
    for block in (4, 8, 12):
        assert names[names.index(f"residual_block_{block}") + 1] == f"msff_after_block_{block}"
        fusion = paper_models[name].get_layer(f"msff_after_block_{block}")
        assert isinstance(fusion, MultiScaleFusion) and fusion.dilation_rates == (2, 5)
    assert [n for n in names if n.startswith("upsample")] == ["upsample_1"]


def test_srresnet_is_the_same_code_without_attention_or_fusion(paper_models):
    model = paper_models["srresnet_primary"]
    assert not any(isinstance(layer, MultiScaleFusion) for layer in model.layers)
    assert all(layer.attention is None for layer in model.layers if isinstance(layer, ResidualBlock))
    assert model.count_params() < paper_models["esrresnet_primary"].count_params()


def test_bad_hyper_parameters_name_the_argument():
    with pytest.raises(CkmsimError, match="fusion_after"):
        build_esrresnet("tiny", num_blocks=2)
    with pytest.raises(CkmsimError, match="scale"):
        build_esrresnet("tiny", scale=3)
    with pytest.raises(CkmsimError, match="preset"):
        build_esrresnet("huge")
    with pytest.raises(CkmsimError, match="mode"):
        MultiHeadSelfAttention(mode="local")


# ------------------------------------------------------------------------------------------------------
# Layers: one harness (shape, config round trip, a fit step) and the attention options
# ------------------------------------------------------------------------------------------------------

LAYER_CASES = [
    (ResidualBlock, {"filters": 8}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (ResidualBlock, {"filters": 8, "attention": False, "batch_norm": False}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (MultiHeadSelfAttention, {"num_heads": 4, "mode": "window", "window_size": 4}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (MultiHeadSelfAttention, {"num_heads": 2, "mode": "pooled", "pool_size": 2}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (MultiScaleFusion, {"filters": 8}, (2, 8, 8, 8), (2, 8, 8, 8)),
    (Upsample, {"filters": 4}, (2, 8, 8, 8), (2, 16, 16, 4)),
]


@pytest.mark.parametrize("cls, kwargs, input_shape, output_shape", LAYER_CASES)
def test_layer_shapes_config_round_trip_and_one_fit_step(cls, kwargs, input_shape, output_shape):
    keras.utils.set_random_seed(0)
    layer = cls(**kwargs, name="under_test")
    x = np.random.default_rng(1).random(input_shape, dtype=np.float32)
    y = layer(x)
    assert tuple(y.shape) == output_shape and y.dtype == "float32"
    assert tuple(layer.compute_output_shape(input_shape)) == output_shape
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = keras.Sequential([keras.Input(input_shape[1:]), cls.from_config(layer.get_config())])
    # eager: tracing a graph per case would dominate this test's time
    model.compile(optimizer="adam", loss="mse", run_eagerly=True)
    loss = model.train_on_batch(x, np.zeros(output_shape, np.float32))
    assert np.isfinite(loss)


def test_window_and_pooled_attention_reduce_to_global_attention():
    x = np.random.default_rng(2).random((2, 8, 8, 8), dtype=np.float32)
    reference = MultiHeadSelfAttention(num_heads=4)
    expected = reference(x)
    for options in ({"mode": "window", "window_size": 8}, {"mode": "pooled", "pool_size": 1}):
        variant = MultiHeadSelfAttention(num_heads=4, **options)
        variant.build(x.shape)
        variant.set_weights(reference.get_weights())
        np.testing.assert_allclose(variant(x), expected, atol=1e-5)


def test_global_attention_mixes_distant_positions_and_window_attention_does_not():
    x = np.zeros((1, 8, 8, 8), dtype=np.float32)
    changed = x.copy()
    # a non-constant feature vector (LayerNorm maps a constant one to zero)
    changed[0, 7, 7] = np.linspace(-1.0, 1.0, 8)
    for mode, reaches in (("global", True), ("window", False)):
        layer = MultiHeadSelfAttention(num_heads=2, mode=mode, window_size=4)
        difference = np.abs(np.asarray(layer(changed)) - np.asarray(layer(x)))[0, 0, 0].max()
        assert (difference > 1e-6) == reaches


def test_save_and_load_give_identical_predictions(tmp_path):
    model = _tiny(attention_mode="pooled", pool_size=2)
    x = np.random.default_rng(3).random((2, 8, 8, 5), dtype=np.float32)
    model.save(tmp_path / "model.keras")
    loaded = load_esrresnet(tmp_path / "model.keras")
    assert isinstance(loaded, ESRResNet) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))
    with pytest.raises(CkmsimError, match="does not exist"):
        load_esrresnet(tmp_path / "missing.keras")


def test_input_skip_adds_the_nearest_upsampling_of_the_pgm_pam_input(tmp_path):
    model = _tiny(input_skip=True)
    x = np.random.default_rng(4).random((2, 8, 8, 5), dtype=np.float32)
    # With the last convolution zeroed the trunk contributes nothing: the output is the skip alone, and
    # output cell (2i + a, 2j + b) repeats lattice sample (i, j) of channels 0 (PGM) and 1 (PAM).
    tail = model.get_layer("tail_conv")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    expected = np.repeat(np.repeat(x[..., :2], 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), expected)
    model.save(tmp_path / "skip.keras")
    loaded = load_esrresnet(tmp_path / "skip.keras")
    assert loaded.get_config()["input_skip"] is True
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), expected)
    assert _tiny().get_config()["input_skip"] is False


# ------------------------------------------------------------------------------------------------------
# Tensors: encoder, decoding, LoS test, augmentation
# ------------------------------------------------------------------------------------------------------

def test_lowres_inputs_read_the_lattice_and_targets_decode_to_the_truth(rng):
    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    encoder = LowResPathEncoder(path=0, priors=("los", "building", "bs_gaussian"))
    x, y = encoder(observation, truth)
    assert x.shape == (N // 2, N // 2, 5) and y.shape == (N, N, 2)
    building = truth["building"].values
    open_cells = ~building
    np.testing.assert_allclose(pixel_to_gain_db(y[..., 0])[open_cells], truth["path_gain_db"].values[0][open_cells],
                               atol=1e-3)
    np.testing.assert_allclose(pixel_to_angle_deg(y[..., 1])[open_cells], truth["aoa_az_deg"].values[0][open_cells],
                               atol=1e-3)
    # channel 0/1 at lattice cell (i, j) = target at full cell (2i, 2j); buildings are 0 in every channel
    np.testing.assert_allclose(x[..., :2], np.where(building[::2, ::2, None], 0.0, y[::2, ::2]), atol=1e-6)
    # the Friis LoS test recovers the truth's LoS on the observed lattice, BS map peaks at the BS cell
    np.testing.assert_array_equal(x[..., 2] == 1.0, (truth["los"].values & open_cells)[::2, ::2])
    np.testing.assert_array_equal(x[..., 3], (~building[::2, ::2]).astype(np.float32))
    assert np.unravel_index(np.argmax(x[..., 4]), x.shape[:2]) == (BS_CELL[0] // 2, BS_CELL[1] // 2)
    truth_los = LowResPathEncoder(los_source="truth").inputs(observation, truth)
    np.testing.assert_array_equal(truth_los, x)


def test_loss_weights_count_every_cell_or_the_open_cells_with_the_path(rng):
    truth = _truth(rng)
    truth["path_gain_db"].values[0, 10, 0:3] = GAIN_FLOOR_DB  # three open cells without a primary path
    building = truth["building"].values
    np.testing.assert_array_equal(LowResPathEncoder().loss_weights(truth), np.ones((N, N), np.float32))
    weights = LowResPathEncoder(loss_cells="path").loss_weights(truth)
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights == 0.0, building | (truth["path_gain_db"].values[0] <= GAIN_FLOOR_DB))
    assert weights.sum() == (~building).sum() - 3
    with pytest.raises(CkmsimError, match="loss_cells"):
        LowResPathEncoder(loss_cells="open")


def test_weighted_pairs_ignore_the_cells_of_weight_zero():
    x = np.zeros((2, 4, 4, 5), np.float32)
    y = np.zeros((2, 8, 8, 2), np.float32)
    weights = np.zeros((2, 8, 8), np.float32)
    weights[:, :4] = 1.0
    y[:, 4:] = 1.0  # errors only where the weight is 0
    model = keras.Sequential([keras.Input((4, 4, 5)), keras.layers.UpSampling2D(2),
                              keras.layers.Lambda(lambda t: t[..., :2])])
    model.compile(loss="mse")
    batch = next(iter(pairs_dataset(x, y, 2, shuffle=False, weights=weights)))
    assert len(batch) == 3 and tuple(batch[2].shape) == (2, 8, 8)
    assert model.evaluate(pairs_dataset(x, y, 2, shuffle=False, weights=weights), verbose=0) == 0.0
    assert model.evaluate(pairs_dataset(x, y, 2, shuffle=False), verbose=0) == pytest.approx(0.5)


def test_encoder_refuses_other_tasks_and_bad_priors(rng):
    truth = _truth(rng)
    with pytest.raises(CkmsimError, match="factor=4"):
        LowResPathEncoder().inputs(Degradation([Subsample(4)])(truth))
    with pytest.raises(CkmsimError, match="order"):
        LowResPathEncoder(priors=("building", "los"))
    with pytest.raises(CkmsimError, match="path 2"):
        LowResPathEncoder(path=2).target(truth)


def test_friis_los_map_matches_free_space_gain_only():
    grid = Grid(0.0, 0.0, 4, 4, 2.0, 1.5)
    bs = (1.0, 1.0, 10.0)
    distance = np.linalg.norm(grid.cell_centers_m() - np.array(bs), axis=-1)
    gain = free_space_gain_db(distance, FREQUENCY_HZ)
    gain[0, 0] -= 3.0
    gain[1, 1] = np.nan
    los = friis_los_map(gain, grid, bs, FREQUENCY_HZ)
    assert los.sum() == 14 and not los[0, 0] and not los[1, 1]
    assert free_space_gain_db(1.0, SPEED_OF_LIGHT_M_S / 0.1) == pytest.approx(20 * np.log10(0.1 / (4 * np.pi)))


def test_decoding_clips_to_real_angles_and_marks_buildings():
    building = np.zeros((2, 2), dtype=bool)
    building[0, 0] = True
    pixels = np.array([[[0.5, 0.5], [1.2, -0.1]], [[-0.3, 1.4], [0.0, 0.02]]])
    gain_db, az_deg = decode_path_maps(np.pad(pixels, ((0, 1), (0, 1), (0, 0))), building)
    assert gain_db[0, 0] == GAIN_FLOOR_DB and np.isnan(az_deg[0, 0])
    np.testing.assert_allclose(gain_db[[0, 1, 1], [1, 0, 1]], [-50.0, -250.0, -250.0])
    np.testing.assert_allclose(az_deg[[0, 1, 1], [1, 0, 1]], [-180.0, 180.0, -180.0])


@pytest.mark.parametrize("transform", range(8))
def test_dihedral_copies_keep_azimuths_pointing_at_the_moved_bs(rng, transform):
    truth = _truth(rng)
    copy = dihedral_ckm(truth, transform)
    grid_centres = Grid.from_dict(dict(copy.attrs["grid"])).cell_centers_m()
    bs = np.array(copy.attrs["bs_position_m"])
    toward_bs = np.degrees(np.arctan2(bs[1] - grid_centres[..., 1], bs[0] - grid_centres[..., 0]))
    az = copy["aoa_az_deg"].values[0]
    # the BS cell itself has no horizontal direction to the BS
    open_cells = ~copy["building"].values & (np.hypot(*(bs[:2] - grid_centres[..., :2]).T).T > 1e-6)
    error = (az - toward_bs + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(error[open_cells], 0.0, atol=1e-4)
    np.testing.assert_allclose(np.sort(copy["path_gain_db"].values.ravel()),
                               np.sort(truth["path_gain_db"].values.ravel()))
    assert copy["building"].sum() == truth["building"].sum()


# ------------------------------------------------------------------------------------------------------
# Training: the loss falls on a tiny dataset store; the TOML entry point
# ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Eight 16 x 16 samples (6 train, 2 val), each with its own BS cell, stored like a built dataset."""
    path = tmp_path_factory.mktemp("esrresnet") / "store"
    header = {"name": "synthetic", "num_planned": 8, "ckmsim_version": "test", "versions": {},
              "config": {"tile_cells": N, "ray_tracing": {"frequency_hz": FREQUENCY_HZ}}}
    created = DatasetStore.create(path, header)
    rng = np.random.default_rng(5)
    for index in range(8):
        truth = _truth(rng, bs_cell=(int(rng.integers(0, 8)), int(rng.integers(0, 8))))
        arrays = {name: (truth[name].dims, truth[name].values) for name in truth.data_vars}
        arrays["tx_position_m"] = (("xyz",), np.array(truth.attrs["bs_position_m"]))
        split = "val" if index >= 6 else "train"
        created.append(arrays, {"id": f"s{index}", "scene": "synthetic", "split": split,
                                "grid": dict(truth.attrs["grid"])})
    return DatasetStore.open(path)


def test_a_few_training_steps_lower_the_loss(store, tmp_path):
    from ckmsim.train.trainer import TrainSettings, train

    encoder = LowResPathEncoder(path=0)
    x, y, _ = encode_store(store, encoder, split=None)
    assert x.shape == (8, N // 2, N // 2, 5) and y.shape == (8, N, N, 2)
    model = _tiny()
    # with validation data: the trainer's history reader trips over the 'NA' val_loss Keras logs without it
    result = train(model, pairs_dataset(x[:6], y[:6], batch_size=3, seed=0), pairs_dataset(x[6:], y[6:], 2),
                   tmp_path / "run", TrainSettings(epochs=8, learning_rate=2e-3, lr_patience=0))
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.5 * losses[0]


def test_train_esrresnet_from_toml_trains_resumes_and_checks_keys(store, tmp_path):
    from ckmsim.models.esrresnet.train import load_train_config, train_esrresnet

    config = tmp_path / "train.toml"
    config.write_text(f"""
[data]
dataset = "{store.path}"
augment = true
loss_cells = "path"
[train]
epochs = 2
batch_size = 8
learning_rate = 1e-3
[out]
dir = "runs"
[model]
num_blocks = 1
filters = 4
fusion_after = [1]
head_kernel_size = 3
[[runs]]
name = "primary"
path = 0
priors = "primary"
[[runs]]
name = "secondary-srresnet"
path = 1
priors = "secondary"
[runs.model]
attention = false
fusion_after = []
""")
    summaries = train_esrresnet(config, log=lambda *args: None)
    assert set(summaries) == {"primary", "secondary-srresnet"}
    assert summaries["primary"]["num_train_pairs"] == 6 * 8 and summaries["primary"]["epochs"] == 2
    assert summaries["primary"]["samples_per_s"] > 0
    stored = json.loads((tmp_path / "runs" / "secondary-srresnet" / "train_config.json").read_text())
    assert stored["run"]["model"]["num_input_channels"] == 4 and stored["run"]["model"]["attention"] is False
    assert stored["run"]["loss_cells"] == "path"
    again = train_esrresnet(config, only=["primary"], log=lambda *args: None)
    assert again["primary"]["time"] == summaries["primary"]["time"]  # finished: skipped, not retrained
    config.write_text(config.read_text().replace('loss_cells = "path"', 'loss_cells = "open"'))
    with pytest.raises(CkmsimError, match="loss_cells"):
        load_train_config(config)
    config.write_text(config.read_text().replace("augment = true", "augment = true\nshuffle = 1"))
    with pytest.raises(CkmsimError, match="shuffle"):
        load_train_config(config)


# ------------------------------------------------------------------------------------------------------
# The Method face
# ------------------------------------------------------------------------------------------------------

def test_method_predicts_a_valid_ckm_with_network_paths_and_bicubic_rest(rng, tmp_path):
    from ckmsim.baselines.interpolation import Bicubic

    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    primary = _tiny(5)
    primary.save(tmp_path / "primary.keras")
    method = ESRResNetMethod(tmp_path / "primary.keras", secondary=_tiny(4), label="esrresnet-test").fit()
    prediction = method.predict(observation)
    validate_ckm(prediction)
    assert prediction.attrs["method"] == "esrresnet-test" and prediction.attrs["task"] == "sr_x2"
    bicubic = Bicubic().predict(observation)
    raw = ESRResNetMethod(primary, secondary=method.models_[1], keep_observed=False).fit().predict(observation)
    seen = observation.observed
    for path, model, priors in ((0, primary, ("los", "building", "bs_gaussian")), (1, method.models_[1],
                                                                                 ("building", "bs_gaussian"))):
        x = LowResPathEncoder(path=path, priors=priors).inputs(observation)
        gain_db, az_deg = decode_path_maps(np.asarray(model(x[None]))[0], observation.building)
        # keep_observed=False: the network everywhere (the paper); default: measured cells keep their values
        np.testing.assert_allclose(raw["path_gain_db"].values[path], gain_db, atol=1e-4)
        np.testing.assert_allclose(raw["aoa_az_deg"].values[path], az_deg, atol=1e-4)
        np.testing.assert_allclose(prediction["path_gain_db"].values[path][~seen], gain_db[~seen], atol=1e-4)
        np.testing.assert_allclose(prediction["aoa_az_deg"].values[path][~seen], az_deg[~seen], atol=1e-4)
        np.testing.assert_array_equal(prediction["path_gain_db"].values[path][seen],
                                      truth["path_gain_db"].values[path][seen])
        np.testing.assert_array_equal(prediction["aoa_az_deg"].values[path][seen],
                                      truth["aoa_az_deg"].values[path][seen])
    np.testing.assert_array_equal(prediction["aoa_el_deg"].values, bicubic["aoa_el_deg"].values)
    np.testing.assert_array_equal(prediction["gain_db"].values, bicubic["gain_db"].values)
    assert np.all(np.isfinite(prediction["aoa_az_deg"].values[:, ~observation.building]))


def test_method_says_which_observations_it_cannot_handle(rng):
    truth = _truth(rng)
    method = ESRResNetMethod(_tiny(5)).fit()
    assert "factor=4" in method.unsupported_reason(Degradation([Subsample(4)])(truth))
    with pytest.raises(CkmsimError, match="input channels"):
        ESRResNetMethod(_tiny(4)).fit()
    with pytest.raises(CkmsimError, match="fit"):
        ESRResNetMethod(_tiny(5)).predict(Degradation([Subsample(2)])(truth))

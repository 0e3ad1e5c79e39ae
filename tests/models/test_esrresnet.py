"""E-SRResNet: the paper's architecture, its layers, its tensors, training, save/load, and the Method face."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg, wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm, validate_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.grid import Grid

keras = pytest.importorskip("keras")

from ckmsim.models.esrresnet.network import (ESRResNet, MultiHeadSelfAttention, MultiScaleFusion,  # noqa: E402
                                             PathSRLoss, ResidualBlock, Upsample, build_esrresnet, load_esrresnet)
from ckmsim.models.esrresnet.data import (ABSENT_LOGIT, EXISTS_LOGIT, GUIDE_CHANNELS, PRIOR_SETS, PathSREncoder, dihedral_ckm,  # noqa: E402
                                          SPEED_OF_LIGHT_M_S, encode_store, free_space_gain_db,
                                          friis_los_map, pairs_dataset)
from ckmsim.models.esrresnet.method import ESRResNetMethod, cascade_observation  # noqa: E402

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
    # Sionna RT's arrival azimuth of a LoS path is its direction of propagation, BS -> UE (measured on the
    # ray-traced procedural cities: 180 deg from the direction towards the BS in every LoS cell)
    from_bs = np.degrees(np.arctan2(centres[..., 1] - bs[1], centres[..., 0] - bs[0]))
    az = np.stack([from_bs, from_bs + rng.uniform(-60, 60, grid.shape)])
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


def _skip_models(priors_by_path=((0, PRIOR_SETS["primary"]), (1, PRIOR_SETS["secondary"])), **overrides):
    """Tiny skip-corrected networks with their encoders, one per path (untrained: bicubic exactly)."""
    models, encoders = [], []
    for path, priors in priors_by_path:
        encoder = PathSREncoder(path=path, priors=priors)
        models.append(_tiny(**{**encoder.model_arguments(), "attention_mode": "pooled", "pool_size": 2,
                               "batch_norm": False, **overrides}))
        encoders.append(encoder)
    return models, encoders


def _open_path_cells(truth, observation, path: int = 0) -> np.ndarray:
    """Cells Table I scores: open, not measured, where the true path exists."""
    return ((truth["path_gain_db"].values[path] > GAIN_FLOOR_DB) & ~truth["building"].values
            & ~observation.observed)


def test_untrained_skip_network_is_bicubic_exactly_and_survives_save_and_load(rng, tmp_path):
    from ckmsim.baselines.interpolation import Bicubic

    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    (primary, secondary), (enc0, enc1) = _skip_models()
    primary.save(tmp_path / "primary.keras")
    bicubic = Bicubic().predict(observation)
    open_cells = ~observation.building
    for keep in (True, False):
        method = ESRResNetMethod(tmp_path / "primary.keras", secondary, enc0, enc1, keep_observed=keep).fit()
        prediction = method.predict(observation)
        for name, atol in (("path_gain_db", 1e-3), ("aoa_az_deg", 1e-3)):
            np.testing.assert_allclose(prediction[name].values[:, open_cells], bicubic[name].values[:, open_cells],
                                       atol=atol, err_msg=name)
    # a correction that is not zero moves the prediction off bicubic where it is not measured
    tail = primary.get_layer("tail_conv")
    tail.set_weights([w + 0.01 for w in tail.get_weights()])
    moved = ESRResNetMethod(primary, None, enc0).fit().predict(observation)
    cells = _open_path_cells(truth, observation)
    assert np.abs(moved["path_gain_db"].values[0][cells] - bicubic["path_gain_db"].values[0][cells]).min() > 0.01


def test_encoder_channels_on_the_lattice_and_the_guide_from_the_bs_geometry(rng):
    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    encoder = PathSREncoder(path=0)
    inputs, target = encoder(observation, truth)
    lowres, skip, guide = inputs["lowres_maps"], inputs["skip_maps"], inputs["guide_maps"]
    assert lowres.shape == (N // 2, N // 2, 7) and skip.shape == (N, N, 4) and guide.shape == (N, N, 8)
    assert target.shape == (N, N, 6)
    building = truth["building"].values
    gain, az = truth["path_gain_db"].values[0], np.radians(truth["aoa_az_deg"].values[0])
    lattice = (slice(None, None, 2), slice(None, None, 2))
    open_lattice = ~building[lattice]
    # lattice: (g + 120) / 30, exists, cos, sin of the measured path; 0 on buildings
    np.testing.assert_allclose(lowres[..., 0][open_lattice], ((gain[lattice] + 120.0) / 30.0)[open_lattice], atol=1e-5)
    np.testing.assert_array_equal(lowres[..., 1], open_lattice.astype(np.float32))
    np.testing.assert_allclose(lowres[..., 2][open_lattice], np.cos(az[lattice])[open_lattice], atol=1e-6)
    np.testing.assert_allclose(lowres[..., 3][open_lattice], np.sin(az[lattice])[open_lattice], atol=1e-6)
    assert not lowres[..., :4][~open_lattice].any()
    # priors in the paper's order: the Friis LoS test recovers the LoS cells, building map, BS map at the BS
    np.testing.assert_array_equal(lowres[..., 4] == 1.0, (truth["los"].values & ~building)[lattice])
    np.testing.assert_array_equal(lowres[..., 5], open_lattice.astype(np.float32))
    assert np.unravel_index(np.argmax(lowres[..., 6]), lowres.shape[:2]) == (BS_CELL[0] // 2, BS_CELL[1] // 2)
    # guide: on every LoS cell the true arrival azimuth is the BS direction and the gain the free-space gain
    los = truth["los"].values & ~building
    index = {name: i for i, name in enumerate(GUIDE_CHANNELS)}
    guide_az = np.degrees(np.arctan2(guide[..., index["sin_bs_az"]], guide[..., index["cos_bs_az"]]))
    error = (guide_az - truth["aoa_az_deg"].values[0] + 180.0) % 360.0 - 180.0
    far = los & (np.hypot(*np.meshgrid(np.arange(N) - BS_CELL[1], np.arange(N) - BS_CELL[0])) > 0)
    np.testing.assert_allclose(error[far], 0.0, atol=1e-3)
    free_space = guide[..., index["free_space_gain"]] * 30.0 - 120.0
    np.testing.assert_allclose(free_space[los], gain[los], atol=1e-3)
    np.testing.assert_array_equal(guide[..., index["open"]], (~building).astype(np.float32))
    # targets: unit azimuth vectors and the two weights
    np.testing.assert_allclose(np.hypot(target[..., 1], target[..., 2])[~building], 1.0, atol=1e-6)
    np.testing.assert_array_equal(target[..., 4], target[..., 3])
    np.testing.assert_array_equal(target[..., 5], (~building).astype(np.float32))
    truth_los = PathSREncoder(los_source="truth").inputs(observation, truth)["lowres_maps"]
    np.testing.assert_array_equal(truth_los, lowres)


def test_guide_stands_the_ue_on_the_local_ground(rng):
    truth = _truth(rng)
    raised = truth.assign(ground_m=(("y", "x"), np.full((N, N), 6.0)))
    flat = PathSREncoder().inputs(Degradation([Subsample(2)])(truth))["guide_maps"]
    high = PathSREncoder().inputs(Degradation([Subsample(2)])(raised))["guide_maps"]
    # the UE 6 m higher is 6 m nearer the 10 m BS: a larger free-space gain at the BS cell, by the closed form
    bs_z, ue_z = truth.attrs["bs_position_m"][2], 1.5
    expected = 20 * np.log10((bs_z - ue_z) / (bs_z - ue_z - 6.0))
    index = GUIDE_CHANNELS.index("free_space_gain")
    assert (high[BS_CELL][index] - flat[BS_CELL][index]) * 30.0 == pytest.approx(expected, abs=1e-3)


def test_odd_grid_pads_the_skip_and_the_target_and_decodes_cropped(rng):
    truth = _truth(rng, n=15)
    observation = Degradation([Subsample(2)])(truth)
    (model,), (encoder,) = _skip_models(((0, PRIOR_SETS["primary"]),))
    inputs, target = encoder(observation, truth)
    assert inputs["lowres_maps"].shape[:2] == (8, 8) and inputs["skip_maps"].shape[:2] == (16, 16)
    assert not target[15, :, 4:].any() and not target[:, 15, 4:].any()  # padding carries no loss weight
    prediction = ESRResNetMethod(model, None, encoder).fit().predict(observation)
    assert prediction["path_gain_db"].shape == (2, 15, 15)


def test_path_sr_loss_matches_a_brute_force_sum_and_its_closed_forms():
    rng = np.random.default_rng(8)
    y_pred = rng.normal(size=(2, 4, 4, 4)).astype(np.float32)
    angle = rng.uniform(-np.pi, np.pi, (2, 4, 4))
    exists = (rng.random((2, 4, 4)) > 0.3).astype(np.float32)
    w_open = (rng.random((2, 4, 4)) > 0.2).astype(np.float32)
    y_true = np.stack([rng.normal(size=(2, 4, 4)), np.cos(angle), np.sin(angle), exists, exists * w_open, w_open],
                      axis=-1).astype(np.float32)
    # brute force, cell by cell
    path_sum = weight_path = open_sum = weight_open = 0.0
    for index in np.ndindex(2, 4, 4):
        g, c, s, z = (float(v) for v in y_pred[index])
        t = y_true[index]
        predicted_angle = np.arctan2(s, c)
        path_sum += t[4] * ((g - t[0]) ** 2 + 2 * (1 - np.cos(predicted_angle - angle[index])))
        weight_path += t[4]
        probability = 1 / (1 + np.exp(-z))
        open_sum += t[5] * -(t[3] * np.log(probability) + (1 - t[3]) * np.log(1 - probability))
        weight_open += t[5]
    expected = path_sum / weight_path + 0.25 * open_sum / weight_open
    assert float(PathSRLoss(exists_weight=0.25)(y_true, y_pred)) == pytest.approx(expected, rel=1e-4)
    # a right angle off on every cell with the path costs 2 (the squared chord of unit vectors)
    rotated = np.stack([y_true[..., 0], -y_true[..., 2], y_true[..., 1], np.full((2, 4, 4), 30.0)], -1)
    assert float(PathSRLoss(exists_weight=0.0)(y_true, rotated)) == pytest.approx(2.0, rel=1e-4)
    assert PathSRLoss.from_config(PathSRLoss(0.3).get_config()).exists_weight == 0.3


def test_decode_floors_absent_paths_keeps_measured_cells_and_marks_buildings(rng):
    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    encoder = PathSREncoder()
    output = np.zeros((N, N, 4))
    output[..., 0] = (-100.0 + 120.0) / 30.0
    output[..., 1], output[..., 2] = 0.0, -2.0     # -90 deg, any length
    output[..., 3] = -1.0                           # unsure: a wrong "absent" costs ~350x a wrong "present"
    output[3, 1, 3] = -7.0                          # the network is sure: no path here
    gain_db, az_deg = encoder.decode(output, observation, keep_observed=False)
    building = truth["building"].values
    assert np.all(gain_db[building] == GAIN_FLOOR_DB) and np.all(np.isnan(az_deg[building]))
    assert gain_db[3, 1] == GAIN_FLOOR_DB and gain_db[3, 0] == pytest.approx(-100.0)
    # the Bayes threshold log(C_present / C_absent) with (7 dB)^2 against (130 dB)^2
    assert ABSENT_LOGIT == pytest.approx(np.log(49.0 / 16900.0)) and -EXISTS_LOGIT < ABSENT_LOGIT < 0
    assert encoder.decode(output, observation, keep_observed=False, absent_logit=0.0)[0][3, 0] == GAIN_FLOOR_DB
    np.testing.assert_allclose(az_deg[~building], -90.0)
    kept_gain, kept_az = encoder.decode(output, observation)
    seen = observation.observed
    np.testing.assert_array_equal(kept_gain[seen], truth["path_gain_db"].values[0][seen])
    np.testing.assert_array_equal(kept_az[seen], truth["aoa_az_deg"].values[0][seen])
    with pytest.raises(CkmsimError, match="4\\]"):
        encoder.decode(output[..., :2], observation)


def test_encoder_refuses_other_tasks_bad_priors_and_unknown_settings(rng):
    truth = _truth(rng)
    with pytest.raises(CkmsimError, match="factor=4"):
        PathSREncoder().inputs(Degradation([Subsample(4)])(truth))
    with pytest.raises(CkmsimError, match="order"):
        PathSREncoder(priors=("building", "los"))
    with pytest.raises(CkmsimError, match="path 2"):
        PathSREncoder(path=2).target(truth)
    with pytest.raises(CkmsimError, match="power of 2"):
        PathSREncoder(factor=3)
    with pytest.raises(CkmsimError, match="loss_cells"):
        PathSREncoder.from_dict({"path": 0, "loss_cells": "path"})
    assert PathSREncoder.from_dict(PathSREncoder(1, ("building",), 4).to_dict()) == PathSREncoder(1, ("building",), 4)


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


@pytest.mark.parametrize("transform", range(8))
def test_dihedral_copies_keep_azimuths_pointing_from_the_moved_bs(rng, transform):
    truth = _truth(rng)
    copy = dihedral_ckm(truth, transform)
    grid_centres = Grid.from_dict(dict(copy.attrs["grid"])).cell_centers_m()
    bs = np.array(copy.attrs["bs_position_m"])
    from_bs = np.degrees(np.arctan2(grid_centres[..., 1] - bs[1], grid_centres[..., 0] - bs[0]))
    az = copy["aoa_az_deg"].values[0]
    # the BS cell itself has no horizontal direction to the BS
    open_cells = ~copy["building"].values & (np.hypot(*(bs[:2] - grid_centres[..., :2]).T).T > 1e-6)
    error = (az - from_bs + 180.0) % 360.0 - 180.0
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


def test_a_few_training_steps_lower_the_loss_below_bicubic(store, tmp_path):
    from ckmsim.train.trainer import TrainSettings, train

    encoder = PathSREncoder(path=0)
    x, y = encode_store(store, encoder, split=None)
    assert x["lowres_maps"].shape == (8, N // 2, N // 2, 7) and y.shape == (8, N, N, 6)
    (model,), _ = _skip_models(((0, PRIOR_SETS["primary"]),))
    loss = PathSRLoss()
    first = {name: value[:6] for name, value in x.items()}
    untrained = float(loss(y[:6], model(first)))
    last = {name: value[6:] for name, value in x.items()}
    result = train(model, pairs_dataset(first, y[:6], batch_size=3, seed=0), pairs_dataset(last, y[6:], 2),
                   tmp_path / "run", TrainSettings(epochs=8, learning_rate=2e-3, lr_patience=0), loss=loss)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.7 * untrained


def test_train_esrresnet_from_toml_trains_resumes_and_checks_keys(store, tmp_path):
    from ckmsim.models.esrresnet.train import load_train_config, train_esrresnet

    config = tmp_path / "train.toml"
    config.write_text(f"""
[data]
dataset = "{store.path}"
augment = true
[loss]
exists_weight = 0.2
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
batch_norm = false
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
    assert summaries["primary"]["samples_per_s"] > 0 and summaries["primary"]["untrained_val_loss"] > 0
    assert summaries["secondary-srresnet"]["encoder"]["priors"] == ["building", "bs_gaussian"]
    stored = json.loads((tmp_path / "runs" / "secondary-srresnet" / "train_config.json").read_text())
    assert stored["run"]["model"]["num_input_channels"] == 6 and stored["run"]["model"]["attention"] is False
    assert stored["run"]["loss"]["exists_weight"] == 0.2 and stored["run"]["encoder"]["path"] == 1
    again = train_esrresnet(config, only=["primary"], log=lambda *args: None)
    assert again["primary"]["time"] == summaries["primary"]["time"]  # finished: skipped, not retrained
    config.write_text(config.read_text().replace("exists_weight = 0.2", "exists_weight = 0.2\nmask_weight = 1"))
    with pytest.raises(CkmsimError, match="mask_weight"):
        load_train_config(config)
    config.write_text(config.read_text().replace("augment = true", "augment = true\nshuffle = 1"))
    with pytest.raises(CkmsimError, match="shuffle"):
        load_train_config(config)


# ------------------------------------------------------------------------------------------------------
# The Method face
# ------------------------------------------------------------------------------------------------------

def test_method_predicts_a_valid_ckm_with_network_paths_and_bicubic_rest(rng):
    from ckmsim.baselines.interpolation import Bicubic

    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    models, encoders = _skip_models()
    for model in models:
        tail = model.get_layer("tail_conv")
        tail.set_weights([np.random.default_rng(1).normal(0, 0.05, w.shape) for w in tail.get_weights()])
    method = ESRResNetMethod(*models, *encoders, label="esrresnet-test").fit()
    prediction = method.predict(observation)
    validate_ckm(prediction)
    assert prediction.attrs["method"] == "esrresnet-test" and prediction.attrs["task"] == "sr_x2"
    bicubic = Bicubic().predict(observation)
    seen = observation.observed
    for path in (0, 1):
        np.testing.assert_array_equal(prediction["path_gain_db"].values[path][seen],
                                      truth["path_gain_db"].values[path][seen])
        np.testing.assert_array_equal(prediction["aoa_az_deg"].values[path][seen],
                                      truth["aoa_az_deg"].values[path][seen])
        cells = _open_path_cells(truth, observation, path)
        assert np.abs(prediction["aoa_az_deg"].values[path][cells] - bicubic["aoa_az_deg"].values[path][cells]).max() > 0
    np.testing.assert_array_equal(prediction["aoa_el_deg"].values, bicubic["aoa_el_deg"].values)
    np.testing.assert_array_equal(prediction["gain_db"].values, bicubic["gain_db"].values)
    assert np.all(np.isfinite(prediction["aoa_az_deg"].values[:, ~observation.building]))


def test_method_says_which_observations_it_cannot_handle(rng):
    truth = _truth(rng)
    (primary,), (encoder,) = _skip_models(((0, PRIOR_SETS["primary"]),))
    method = ESRResNetMethod(primary, None, encoder).fit()
    assert "factor=3" in method.unsupported_reason(Degradation([Subsample(3)])(truth))
    assert method.unsupported_reason(Degradation([Subsample(4)])(truth)) is None  # the x4 cascade
    with pytest.raises(CkmsimError, match="trained with"):
        ESRResNetMethod(primary, None, PathSREncoder(0, PRIOR_SETS["secondary"])).fit()
    with pytest.raises(CkmsimError, match="fit"):
        ESRResNetMethod(primary, None, encoder).predict(Degradation([Subsample(2)])(truth))


def _plane_truth(n: int = 17) -> "xarray.Dataset":  # noqa: F821
    """Two paths whose gains [dB] and azimuths [deg] are planes in the cell indices, no building."""
    grid = Grid(0.0, 0.0, n, n, 2.0, 1.5)
    rows, cols = np.indices(grid.shape).astype(np.float64)
    path_gain = np.stack([-90.0 - 0.7 * cols + 1.3 * rows, -101.0 - 0.4 * cols - 0.9 * rows])
    az = np.stack([10.0 + 2.0 * cols - 1.5 * rows, -40.0 + 1.0 * cols + 2.5 * rows])
    gain = 10 * np.log10(np.sum(10 ** (path_gain / 10), axis=0))
    variables = {"gain_db": gain, "building": np.zeros(grid.shape, dtype=bool), "path_gain_db": path_gain,
                 "aoa_az_deg": az, "aoa_el_deg": np.full((2,) + grid.shape, 5.0)}
    return make_ckm(grid, variables, {"scene": "planes", "frequency_hz": FREQUENCY_HZ,
                                      "bs_position_m": [float(grid.x_m[2]), float(grid.y_m[3]), 10.0]})


def test_x4_cascade_fills_the_x2_lattice_by_bicubic_and_an_untrained_network_keeps_planes():
    truth = _plane_truth()
    observation = Degradation([Subsample(4)])(truth)
    cascaded = cascade_observation(observation, 2)
    lattice = np.zeros(truth["building"].shape, dtype=bool)
    lattice[::2, ::2] = True
    assert cascaded.factor == 2 and cascaded.task == observation.task
    np.testing.assert_array_equal(cascaded.observed, lattice)
    # bicubic reproduces a plane: the filled lattice cells are the plane's values (closed form); azimuths are
    # interpolated on the unit circle, where a plane of 8 deg per lattice step bends by < 0.01 deg
    for name, atol in (("path_gain_db", 1e-4), ("aoa_az_deg", 0.02)):
        np.testing.assert_allclose(cascaded.values[name].values[:, lattice], truth[name].values[:, lattice],
                                   atol=atol, err_msg=name)
    models, encoders = _skip_models()
    prediction = ESRResNetMethod(*models, *encoders).fit().predict(observation)
    assert prediction.attrs["task"] == "sr_x4"
    for name, atol in (("path_gain_db", 1e-3), ("aoa_az_deg", 0.02)):
        np.testing.assert_allclose(prediction[name].values, truth[name].values, atol=atol, err_msg=name)
    with pytest.raises(CkmsimError, match="multiple of 2"):
        cascade_observation(Degradation([Subsample(3)])(truth), 2)


def test_method_snap_decoding_drops_small_corrections_and_snaps_to_observed_azimuths(rng):
    from ckmsim.baselines.interpolation import Bicubic
    from ckmsim.models.esrresnet.snap import Snap

    truth = _truth(rng)
    observation = Degradation([Subsample(2)])(truth)
    (primary,), (encoder,) = _skip_models(((0, PRIOR_SETS["primary"]),))
    tail = primary.get_layer("tail_conv")
    tail.set_weights([np.random.default_rng(2).normal(0, 0.3, w.shape) for w in tail.get_weights()])
    bicubic = Bicubic().predict(observation)["aoa_az_deg"].values[0]
    plain = ESRResNetMethod(primary, None, encoder).fit().predict(observation)["aoa_az_deg"].values[0]
    cells = _open_path_cells(truth, observation)
    assert np.abs(angle_difference_deg(plain[cells], bicubic[cells])).max() > 1.0
    # every correction below the threshold: bicubic
    kept = ESRResNetMethod(primary, None, encoder, snaps=[Snap(360.0)]).fit().predict(observation)
    np.testing.assert_allclose(kept["aoa_az_deg"].values[0][cells], bicubic[cells], atol=1e-9)
    # no threshold, unbounded tolerance: every unmeasured cell takes a measured azimuth of a neighbour
    snapped = ESRResNetMethod(primary, None, encoder, snaps=[{"threshold_deg": 0.0, "tolerance_deg": None}]).fit()
    az = snapped.predict(observation)["aoa_az_deg"].values[0]
    measured = observation.values["aoa_az_deg"].values[:, observation.observed]
    assert np.all(np.isin(np.round(az[cells], 6), np.round(measured[np.isfinite(measured)], 6)))

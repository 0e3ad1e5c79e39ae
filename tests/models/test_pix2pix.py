"""CKMDiff's conditional baselines (ckmsim.models.pix2pix): the pix2pix networks' shapes and the PatchGAN's
receptive field against the closed form and against the gradient's support, the cGAN train step (it learns;
without its adversarial weight it is the hand-computed L1 step), saving, tiny pix2pix and RadioUNet runs and the
Method face, and the config's checks.

The toy CKMs and the toy dataset store are test_ckmdiff's (same folder, imported as a module)."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Degradation, GaussianNoise, Subsample
from ckmsim.models.ckmdiff.data import CKMDiffEncoding
from test_ckmdiff import _store, _truth

ENCODING = CKMDiffEncoding(gain_range_db=(-120.0, -60.0))
#: 16 x 16 maps -> 1 x 1 bottleneck.
TINY_GENERATOR = {"filters": (8, 16, 32, 64)}
TINY_DISCRIMINATOR = {"filters": (8, 16)}


def _pairs(num_maps=8):
    """``(condition [N, 16, 16, 3], target [N, 16, 16, 1])`` of x4-subsampled toy CKMs."""
    truths = [_truth(16, seed=i) for i in range(num_maps)]
    cond = np.stack([ENCODING.condition(Degradation([Subsample(4)])(truth)) for truth in truths])
    return cond, np.stack([ENCODING.target(truth) for truth in truths])


def _tiny_pix2pix(seed=0, norm="batch", adversarial_weight=1.0, num_dropout=None):
    import keras

    from ckmsim.models.pix2pix.network import PatchDiscriminator, Pix2Pix, UNetGenerator

    keras.utils.set_random_seed(seed)
    generator = UNetGenerator(norm=norm, num_dropout=num_dropout, **TINY_GENERATOR)
    return Pix2Pix(generator, PatchDiscriminator(norm=norm, **TINY_DISCRIMINATOR),
                   adversarial_weight=adversarial_weight)


# ----------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------

def test_generator_and_discriminator_shapes_and_bad_arguments():
    from ckmsim.models.pix2pix.network import PatchDiscriminator, UNetGenerator

    cond = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    generator = UNetGenerator(filters=(8, 16, 32))
    pixels = np.asarray(generator(cond))
    assert pixels.shape == (2, 32, 32, 1) and pixels.dtype == np.float32
    assert np.all((pixels > 0) & (pixels < 1))          # the sigmoid's pixel units
    assert generator.size_multiple == 8 and generator.num_dropout == 2    # pix2pix's 3, capped at 2 blocks
    # default strides (2, 1): 32 / 2; explicit (2, 2, 2): 32 / 8
    assert tuple(PatchDiscriminator(filters=(8, 16))([cond, pixels]).shape) == (2, 16, 16, 1)
    assert tuple(PatchDiscriminator(filters=(8, 8, 8), strides=(2, 2, 2))([cond, pixels]).shape) == (2, 4, 4, 1)
    with pytest.raises(CkmsimError, match="num_dropout"):
        UNetGenerator(filters=(8, 16), num_dropout=2)
    with pytest.raises(CkmsimError, match="strides"):
        PatchDiscriminator(filters=(8, 16), strides=(2,))
    with pytest.raises(CkmsimError, match="norm"):
        UNetGenerator(norm="layer")


def _gradient_support(discriminator, size, out_cell):
    """Rows and columns of the input cells whose value moves the logit at ``out_cell`` (inference mode)."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    cond = tf.constant(rng.normal(size=(1, size, size, 3)), tf.float32)
    image = tf.constant(rng.normal(size=(1, size, size, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([cond, image])
        logit = discriminator([cond, image], training=False)[0, out_cell, out_cell, 0]
    grads = tape.gradient(logit, [cond, image])
    moved = (np.abs(np.asarray(grads[0][0])).sum(-1) + np.abs(np.asarray(grads[1][0, ..., 0]))) > 0
    rows, cols = np.nonzero(moved.any(axis=1))[0], np.nonzero(moved.any(axis=0))[0]
    return rows, cols


@pytest.mark.parametrize("filters,strides,expected_field", [
    ((4, 4, 4, 4), None, 70),         # pix2pix's C64-C128-C256-C512: the 70 x 70 PatchGAN
    ((4, 4), None, 16),               # strides 2, 1: pix2pix's 16 x 16 PatchGAN (experiments/ckmdiff/pix2pix-cpu)
    ((4, 4, 4), (2, 2, 2), 46),       # three stride-2 levels: 1 + 3 (1 + 2 + 4 + 8)
])
def test_patchgan_receptive_field_and_grid_match_the_closed_form(filters, strides, expected_field):
    """The receptive field r = 1 + sum_i (k - 1) prod_{j<i} s_j against pix2pix's published sizes, and against
    the support of one logit's gradient over the inputs (an interior cell of a 128 x 128 input); the logit grid
    is the input over the product of the strides."""
    from ckmsim.models.pix2pix.network import PatchDiscriminator

    discriminator = PatchDiscriminator(filters=filters, strides=strides)
    assert discriminator.receptive_field == expected_field
    total_stride = int(np.prod(discriminator.strides))
    assert discriminator.output_size(128, 96) == (128 // total_stride, 96 // total_stride)
    logits = discriminator([np.zeros((1, 128, 96, 3), np.float32), np.zeros((1, 128, 96, 1), np.float32)])
    assert tuple(logits.shape) == (1, 128 // total_stride, 96 // total_stride, 1)
    rows, cols = _gradient_support(discriminator, 128, out_cell=64 // total_stride)
    for cells in (rows, cols):
        assert len(cells) == expected_field and cells[-1] - cells[0] == expected_field - 1   # one full square


# ----------------------------------------------------------------------------------------------------------
# The cGAN train step
# ----------------------------------------------------------------------------------------------------------

def test_train_step_lowers_the_generator_l1_on_a_tiny_fixed_set():
    """40 steps of the full objective on 8 fixed toy pairs (Adam 1e-3): the generator's L1 (inference mode,
    instance norm so that no batch statistics lag) falls by a third and below the best constant map's (the
    per-cell median of the targets, which needs no network); the logged L1 falls too. Measured: 0.078 ->
    0.041, constant 0.069."""
    import keras

    cond, target = _pairs()
    model = _tiny_pix2pix(norm="instance")

    def l1():
        return float(np.mean(np.abs(np.asarray(model(cond)) - target)))

    before = l1()
    constant = float(np.mean(np.abs(np.median(target, axis=0, keepdims=True) - target)))
    model.compile(keras.optimizers.Adam(1e-3))
    assert model.optimizer.beta_1 == 0.5 and model.discriminator_optimizer.beta_1 == 0.5   # pix2pix's Adam
    logs = [model.train_on_batch(cond, target, return_dict=True) for _ in range(40)]
    after = l1()
    assert after < 0.65 * before and after < constant
    assert np.mean([log["loss"] for log in logs[-5:]]) < 0.75 * np.mean([log["loss"] for log in logs[:5]])
    assert set(logs[-1]) == {"loss", "g_loss", "adversarial", "d_loss"}
    assert all(np.isfinite(value) for value in logs[-1].values())


def test_zero_adversarial_weight_is_the_hand_computed_l1_step():
    """With adversarial_weight = 0 one SGD step of train_step moves the generator exactly as
    w - lr * grad(100 * mean |G(y) - x|) computed on a copy of the generator, whatever the discriminator
    (which still trains); with weight 1 the same start moves elsewhere."""
    import keras
    import tensorflow as tf

    from ckmsim.models.pix2pix.network import UNetGenerator

    cond, target = _pairs(4)
    lr = 0.05

    def one_step(adversarial_weight):
        model = _tiny_pix2pix(seed=3, adversarial_weight=adversarial_weight, num_dropout=0)
        start = [np.asarray(v) for v in model.generator.trainable_variables]
        d_start = [np.asarray(v) for v in model.discriminator.trainable_variables]
        model.compile(keras.optimizers.SGD(lr))
        model.train_on_batch(cond, target)
        return model, start, d_start

    model, start, d_start = one_step(0.0)
    reference = UNetGenerator.from_config(model.generator.get_config())
    for variable, value in zip(reference.trainable_variables, start):
        variable.assign(value)
    with tf.GradientTape() as tape:
        loss = 100.0 * tf.reduce_mean(tf.abs(reference(cond, training=True) - target))
    grads = tape.gradient(loss, reference.trainable_variables)
    stepped = [value - lr * np.asarray(grad) for value, grad in zip(start, grads)]
    for variable, expected in zip(model.generator.trainable_variables, stepped):
        np.testing.assert_allclose(np.asarray(variable), expected, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(np.asarray(v), s) for v, s in zip(model.discriminator.trainable_variables, d_start))

    adversarial, _, _ = one_step(1.0)
    assert any(not np.allclose(np.asarray(v), e, rtol=1e-5, atol=1e-7)
               for v, e in zip(adversarial.generator.trainable_variables, stepped))


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    import keras

    cond, target = _pairs(4)
    model = _tiny_pix2pix(seed=1)
    model.compile(keras.optimizers.Adam(1e-3))
    for _ in range(3):                          # moving batch statistics away from their start
        model.train_on_batch(cond, target)
    path = tmp_path / "pix2pix.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert type(loaded) is type(model) and loaded.adversarial_weight == 1.0 and loaded.reconstruction == "l1"
    np.testing.assert_allclose(np.asarray(loaded(cond)), np.asarray(model(cond)), atol=1e-6)
    pair = [cond, target]
    np.testing.assert_allclose(np.asarray(loaded.discriminator(pair)), np.asarray(model.discriminator(pair)),
                               atol=1e-6)
    # compiled: both optimizers come back with their state (what a resumed run relies on)
    compiled = keras.saving.load_model(path)
    assert int(compiled.optimizer.iterations) == int(compiled.discriminator_optimizer.iterations) == 3
    assert compiled.optimizer.beta_1 == compiled.discriminator_optimizer.beta_1 == 0.5


# ----------------------------------------------------------------------------------------------------------
# Training runs, the Method, the config
# ----------------------------------------------------------------------------------------------------------

CONFIG = """
[pix2pix]
model = "{model}"
dataset = "{dataset}"
[encoding]
gain_range_db = [-120.0, -60.0]
[[degradation]]
steps = [{{kind = "subsample", factor = 4}}]
[[degradation]]
steps = [{{kind = "box_mask", size = 4}}, {{kind = "noise", std_px = 0.05}}]
{networks}
[train]
epochs = 2
learning_rate = 1e-3
batch_size = 4
"""
NETWORKS = {
    "pix2pix": "[generator]\nfilters = [8, 16, 32]\n[discriminator]\nfilters = [8, 16]\n",
    "radiounet": ("[generator]\nreduce_channels = 4\nencoder_channels = [8, 16]\nextra_conv_levels = [1]\n"
                  "kernel_size = 3\ntop_channels = 8\n"),
}


def _config(tmp_path, model, dataset="x"):
    path = tmp_path / f"{model}.toml"
    path.write_text(CONFIG.format(model=model, dataset=dataset, networks=NETWORKS[model]))
    return path


@pytest.mark.parametrize("model", ["pix2pix", "radiounet"])
def test_tiny_run_and_the_method(tmp_path, model):
    from ckmsim.models.pix2pix.method import Pix2PixMethod
    from ckmsim.models.pix2pix.train import train_pix2pix
    from ckmsim.train.trainer import read_history

    _store(tmp_path / "toy")
    out = train_pix2pix(_config(tmp_path, model, (tmp_path / "toy").as_posix()), out=str(tmp_path / "run"),
                        log=lambda *_: None)
    history = read_history(out)
    assert len(history) == 2 and all(np.isfinite(row["val_loss"]) for row in history)
    timing = json.loads((out / "timing.json").read_text())
    assert timing[model]["examples"] == 2 * 2 * 4     # 2 epochs of ceil(8 train maps / 4) steps of 4

    method = Pix2PixMethod.from_run(out)
    assert method.name == model and method.tasks_ == ("sr_x4", "box4x4+noise12.75")
    truth = _truth(16, seed=11)
    ckm = method.predict(Degradation([Subsample(4)])(truth))
    gain_db, building = ckm["gain_db"].values, truth["building"].values
    assert np.isnan(gain_db[building]).all() and np.isfinite(gain_db[~building]).all()
    assert np.all((gain_db[~building] >= -120.0) & (gain_db[~building] <= -60.0))
    assert ckm.attrs["method"] == model and ckm.attrs["task"] == "sr_x4"
    # a task it was not trained for (and generation, with nothing observed) is refused, naming its tasks
    other = Degradation([GaussianNoise(std_px=0.1)])(truth)
    assert "trained for tasks ['sr_x4', 'box4x4+noise12.75'], not 'noise25.5'" in method.unsupported_reason(other)
    with pytest.raises(CkmsimError, match="trained for tasks"):
        method.predict(other)
    with pytest.raises(CkmsimError, match="not a pix2pix / RadioUNet run folder"):
        Pix2PixMethod(tmp_path)


def test_train_config_names_bad_entries(tmp_path):
    from ckmsim.models.pix2pix.train import load_pix2pix_train_config

    path = _config(tmp_path, "pix2pix")
    config = load_pix2pix_train_config(path)
    assert config.model == "pix2pix" and config.generator == {"filters": (8, 16, 32)} and config.has_discriminator
    text = path.read_text()
    cases = [
        (text.replace('model = "pix2pix"', 'model = "gan"'), r"model must be one of \['pix2pix', 'radiounet'\]"),
        (text.replace("[generator]", "[generator]\nwidth = 3"), r"unknown key\(s\) \['width'\] in \[generator\]"),
        (text.replace("[generator]", "[generator]\nencoder_channels = [8]"), "encoder_channels"),  # RadioUNet's key
        (text.replace("[train]", "[train]\nbeta_2 = 0.9"), "beta_2"),
        (text.replace("[train]", "[[degradation]]\ngeneration = true\n[train]"), "generation entry"),
        (text.replace("factor = 4", "factr = 4"), "factr"),
    ]
    for bad, message in cases:
        path.write_text(bad)
        with pytest.raises(CkmsimError, match=message):
            load_pix2pix_train_config(path)
    radiounet = _config(tmp_path, "radiounet")
    radiounet.write_text(radiounet.read_text() + "[discriminator]\nfilters = [8]\n")
    with pytest.raises(CkmsimError, match=r"\[discriminator\] has no use with model = 'radiounet'"):
        load_pix2pix_train_config(radiounet)

"""CKMDiff: the decoupled diffusion's closed forms, the sampler, the networks, the condition image, a tiny
two-stage training run and the Method face. The Swin encoder has its own file (test_ckmdiff_swin.py)."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import BoxMask, Degradation, GaussianNoise, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.models.ckmdiff import diffusion
from ckmsim.models.ckmdiff.data import CKMDiffEncoding

# ----------------------------------------------------------------------------------------------------------
# Decoupled diffusion: closed forms (no network)
# ----------------------------------------------------------------------------------------------------------


def test_targets_recover_c_and_eps_from_z_t_and_z0(rng):
    z0 = rng.normal(size=(3, 4, 4, 2))
    eps = rng.normal(size=z0.shape)
    t = np.array([0.01, 0.5, 1.0])
    z_t = diffusion.forward(z0, t, eps)
    # eq. (19) written out per example
    for b in range(3):
        np.testing.assert_allclose(z_t[b], (1 - t[b]) * z0[b] + np.sqrt(t[b]) * eps[b])
    c, eps_back = diffusion.targets(z0, z_t, t)
    np.testing.assert_allclose(c, -z0)
    np.testing.assert_allclose(eps_back, eps, atol=1e-10)
    np.testing.assert_allclose(z0 + t[:, None, None, None] * c + np.sqrt(t)[:, None, None, None] * eps, z_t)


def test_forward_moments_by_monte_carlo(rng):
    """q(z_t | z0) = N((1 - t) z0, t I) (eq. (19)): mean and variance of 200k draws."""
    z0 = np.array([[1.5, -0.7]])
    t = 0.3
    draws = diffusion.forward(np.repeat(z0, 200_000, axis=0), np.full(200_000, t), rng.normal(size=(200_000, 2)))
    np.testing.assert_allclose(draws.mean(axis=0), (1 - t) * z0[0], atol=0.005)
    np.testing.assert_allclose(draws.var(axis=0), t, rtol=0.01)


@pytest.mark.parametrize("t,dt", [(1.0, 0.1), (0.5, 0.25), (0.2, 0.2), (0.7, 0.05)])
def test_reverse_step_is_the_bayes_posterior(rng, t, dt):
    """Alg. 2's step with the true c and eps equals q(z_s | z_t, z0) from Bayes' rule:
    q(z_s | z0) = N((1 - s) z0, s) times q(z_t | z_s, z0) = N(z_s - (t - s) z0, t - s)."""
    s = t - dt
    z0, z_t = rng.normal(size=5), rng.normal(size=5)
    c, eps = diffusion.targets(z0[None], z_t[None], np.array([t]))
    mean = diffusion.reverse_step(z_t, t, dt, c[0], eps[0])
    var = diffusion.posterior_variance(t, dt)
    if s == 0:
        np.testing.assert_allclose(mean, z0, atol=1e-12)
        assert var == 0
        return
    precision = 1 / s + 1 / (t - s)
    bayes_var = 1 / precision
    bayes_mean = bayes_var * ((1 - s) * z0 / s + (z_t + (t - s) * z0) / (t - s))
    np.testing.assert_allclose(mean, bayes_mean, atol=1e-12)
    assert var == pytest.approx(bayes_var, rel=1e-12)


def test_reverse_step_on_fixed_numbers():
    """Alg. 2, line 7 by hand: t = 0.5, dt = 0.25, z_t = 1, c = -0.4, eps = 0.3, noise 2:
    mean 1 + 0.1 - 0.25 / sqrt(0.5) * 0.3 = 0.993934, std sqrt(0.25 * 0.25 / 0.5) = 0.353553."""
    assert diffusion.reverse_step(1.0, 0.5, 0.25, -0.4, 0.3) == pytest.approx(0.9939340, abs=1e-6)
    assert diffusion.reverse_step(1.0, 0.5, 0.25, -0.4, 0.3, noise=2.0) == pytest.approx(0.9939340 + 0.7071068,
                                                                                          abs=1e-6)
    with pytest.raises(CkmsimError, match="dt"):
        diffusion.reverse_step(1.0, 0.2, 0.25, 0.0, 0.0)


def test_one_step_keeps_the_marginal(rng):
    """z_t ~ q(z_t | z0), then one step with the true c, eps and fresh noise: z_s ~ q(z_s | z0) =
    N((1 - s) z0, s) (the bridge is consistent), by Monte Carlo."""
    n, z0, t, dt = 200_000, 0.8, 0.6, 0.2
    z_t = (1 - t) * z0 + np.sqrt(t) * rng.normal(size=n)
    c, eps = diffusion.targets(np.full(n, z0), z_t, np.full(n, t))
    z_s = diffusion.reverse_step(z_t, t, dt, c, eps, rng.normal(size=n))
    assert z_s.mean() == pytest.approx((1 - (t - dt)) * z0, abs=0.005)
    assert z_s.var() == pytest.approx(t - dt, rel=0.01)


@pytest.mark.parametrize("num_steps", [1, 3, 10])
def test_sampler_with_an_oracle_network_returns_z0(rng, num_steps):
    """A network that knows z0 (c = -z0, eps from z_t) makes Alg. 2 end on z0 exactly, for any S."""
    z0 = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)

    def oracle(z_t, t):
        return diffusion.targets(z0, z_t, t)

    out = diffusion.sample(oracle, z0.shape, num_steps, np.random.default_rng(5))
    np.testing.assert_allclose(out, z0, atol=1e-4)


def test_sampler_is_seeded_and_checks_steps():
    calls = []

    def zero(z_t, t):
        calls.append(float(t[0]))
        return np.zeros_like(z_t), np.zeros_like(z_t)

    a = diffusion.sample(zero, (1, 2, 2, 1), 4, np.random.default_rng(1))
    b = diffusion.sample(zero, (1, 2, 2, 1), 4, np.random.default_rng(1))
    c = diffusion.sample(zero, (1, 2, 2, 1), 4, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert calls[:4] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    with pytest.raises(CkmsimError, match="num_steps"):
        diffusion.sample(zero, (1, 2, 2, 1), 0, np.random.default_rng(1))


def test_loss_weights():
    t = np.array([0.0, 0.25, 1.0], dtype=np.float32)
    w_c, w_eps = diffusion.loss_weights(t, "radiodiff")
    np.testing.assert_allclose(np.asarray(w_c), [2 * np.e, 2 * np.exp(0.75), 2.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(w_eps), [1.0, np.exp(0.5), np.e], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(diffusion.loss_weights(t, "paper")[0]), 1.0)
    with pytest.raises(CkmsimError, match="weighting"):
        diffusion.loss_weights(t, "snr")


# ----------------------------------------------------------------------------------------------------------
# Condition image
# ----------------------------------------------------------------------------------------------------------

def _truth(size=16, seed=0):
    """A synthetic gain CKM: a log-distance field with a 4 x 4 building block."""
    rng = np.random.default_rng(seed)
    grid = Grid(0.0, 0.0, size, size, 2.0)
    building = np.zeros((size, size), bool)
    r, c = rng.integers(2, size - 6, size=2)
    building[r:r + 4, c:c + 4] = True
    centers = grid.cell_centers_m()
    src = rng.uniform(-10, 10, size=2)
    d = np.hypot(np.linalg.norm(centers[..., :2] - src, axis=-1), 8.5)
    gain_db = np.where(building, np.nan, -60.0 - 25.0 * np.log10(d))
    return make_ckm(grid, {"gain_db": gain_db, "building": building}, {"scene": "toy"})


def test_condition_image_channels():
    truth = _truth()
    encoding = CKMDiffEncoding(gain_range_db=(-120.0, -60.0))
    observation = Degradation([Subsample(4)])(truth)
    image = encoding.condition(observation)
    assert image.shape == (16, 16, 3) and image.dtype == np.float32
    building = truth["building"].values
    np.testing.assert_array_equal(image[..., 1], building.astype(np.float32))
    # the fill passes through the observed lattice cells (bicubic interpolates its samples)
    observed = observation.observed
    expected = encoding.gain_pixels(truth["gain_db"].values, building)
    np.testing.assert_allclose(image[..., 0][observed], expected[observed], atol=1e-5)
    # Canny edges lie on the building block's border (within a cell), nowhere else
    edges = image[..., 2].astype(bool)
    assert edges.any()
    from scipy import ndimage

    near_border = ndimage.binary_dilation(building, iterations=1) & ~ndimage.binary_erosion(building, iterations=1)
    assert np.all(near_border[edges])
    # zero fill: unobserved cells are 0; generation: the whole image is 0
    zeros = CKMDiffEncoding(gain_range_db=(-120.0, -60.0), fill="zeros").condition(observation)
    assert not zeros[..., 0][~observed].any()
    empty = Degradation([BoxMask(16)])(truth)
    assert not encoding.condition(empty).any()
    with pytest.raises(CkmsimError, match="fill"):
        CKMDiffEncoding(fill="nearest")


def test_knn_fill_equals_the_knn_baseline_where_the_neighbours_are_not_tied(rng):
    """The brute-force fill against ckmsim's KNN (a cKDTree search), on every cell whose 4th and 5th nearest
    observed cells are at different distances (elsewhere either tied cell is a 4th neighbour)."""
    from ckmsim.baselines.interpolation import KNN
    from ckmsim.models.ckmdiff.data import knn_fill

    truth = _truth(16, seed=3)
    observation = Degradation([BoxMask(6), GaussianNoise(std_db=3.0)])(truth, seed=2)
    gain_db = observation.values["gain_db"].values
    valid = np.isfinite(gain_db) & observation.observed
    ours = knn_fill(gain_db, valid)
    theirs = KNN(k=4).predict(observation)["gain_db"].values
    cells = np.indices(valid.shape).reshape(2, -1).T
    d = np.sort(np.linalg.norm(cells[:, None] - cells[valid.ravel()][None], axis=-1), axis=1)
    untied = (d[:, 4] - d[:, 3] > 1e-9).reshape(valid.shape) & ~truth["building"].values
    assert untied.sum() > 50
    np.testing.assert_allclose(ours[untied], theirs[untied], atol=1e-9)
    np.testing.assert_array_equal(ours[valid], gain_db[valid])


# ----------------------------------------------------------------------------------------------------------
# Networks
# ----------------------------------------------------------------------------------------------------------

TINY_VAE = {"channels": (8, 16)}
TINY_UNET = {"base_channels": 8, "channel_mults": (1, 2), "num_blocks": 1}
TINY_SWIN = {"embed_dim": 8, "depths": (1, 1), "num_heads": (2, 2), "window_size": 2, "patch_size": 4}


def _tiny_model(seed=0):
    import keras

    from ckmsim.models.ckmdiff.network import VAE, DecoupledUNet, LatentDiffusion
    from ckmsim.models.ckmdiff.swin import SwinEncoder

    keras.utils.set_random_seed(seed)
    vae = VAE(**TINY_VAE)
    unet = DecoupledUNet(latent_channels=3, cond_levels=2, **TINY_UNET)
    return LatentDiffusion(vae, unet, SwinEncoder(**TINY_SWIN), latent_scale=2.0, seed=seed)


def test_network_shapes_loss_and_save_round_trip(tmp_path):
    import keras

    model = _tiny_model()
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype(np.float32)
    cond = np.random.default_rng(1).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    assert tuple(model.vae.encode(x).shape) == (2, 4, 4, 3)
    assert tuple(model.vae(x).shape) == (2, 16, 16, 1)
    loss = np.asarray(model({"x": x, "cond": cond}))
    assert loss.shape == (2,) and np.all(np.isfinite(loss)) and np.all(loss > 0)
    features = model.condition_features(cond)
    assert [tuple(f.shape) for f in features] == [(2, 4, 4, 8), (2, 2, 2, 16)]
    z_t = np.random.default_rng(2).normal(size=(2, 4, 4, 3)).astype(np.float32)
    t = np.array([0.3, 0.9], dtype=np.float32)
    c, eps = (np.asarray(v) for v in model.predict_c_eps(z_t, t, features))
    assert c.shape == eps.shape == (2, 4, 4, 3) and not np.allclose(c, eps)
    path = tmp_path / "ddm.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.latent_scale == 2.0 and not loaded.vae.trainable
    c2, eps2 = (np.asarray(v) for v in loaded.predict_c_eps(z_t, t, loaded.condition_features(cond)))
    np.testing.assert_allclose(c2, c, atol=1e-6)
    np.testing.assert_allclose(eps2, eps, atol=1e-6)


def test_vae_round_trip_improves_with_training_on_a_tiny_set():
    """Reconstruction error of held-out toy maps (posterior mean -> decoder) before and after a short fit: the
    trained VAE must beat both its untrained self and the best constant map (the training mean per cell),
    a bound that needs no VAE to compute."""
    import keras

    from ckmsim.models.ckmdiff.network import VAE

    encoding = CKMDiffEncoding(gain_range_db=(-120.0, -60.0))
    train = np.stack([encoding.target(_truth(16, seed=i)) for i in range(24)])
    held_out = np.stack([encoding.target(_truth(16, seed=100 + i)) for i in range(6)])
    keras.utils.set_random_seed(0)
    vae = VAE(**TINY_VAE)

    def round_trip_mse():
        return float(np.mean((np.asarray(vae.decode(vae.encode(held_out))) - held_out) ** 2))

    before = round_trip_mse()
    constant = float(np.mean((train.mean(axis=0, keepdims=True) - held_out) ** 2))
    vae.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    vae.fit(train, train, batch_size=8, epochs=90, verbose=0, shuffle=False)   # measured: 0.0058 (0.88 before)
    after = round_trip_mse()
    assert after < 0.3 * before
    assert after < 0.5 * constant


def test_bad_network_arguments_are_named():
    from ckmsim.models.ckmdiff.network import VAE, DecoupledUNet

    with pytest.raises(CkmsimError, match="channels"):
        VAE(channels=(8, 16, 32))
    with pytest.raises(CkmsimError, match="cond_levels"):
        DecoupledUNet(channel_mults=(1, 2), cond_levels=3)
    with pytest.raises(CkmsimError, match="base_channels"):
        DecoupledUNet(base_channels=0)


# ----------------------------------------------------------------------------------------------------------
# Training and the Method
# ----------------------------------------------------------------------------------------------------------

def _store(path, num_maps=12, size=16) -> DatasetStore:
    store = DatasetStore.create(path, {"config": {}})
    splits = ["train"] * (num_maps - 4) + ["val"] * 2 + ["test"] * 2
    for i in range(num_maps):
        truth = _truth(size, seed=i)
        arrays = {"gain_db": (("y", "x"), truth["gain_db"].values.astype(np.float32)),
                  "building": (("y", "x"), truth["building"].values),
                  "tx_position_m": (("xyz",), np.array([0.0, 0.0, 10.0]))}
        store.append(arrays, {"id": f"toy/{i:03d}", "scene": f"toy{i % 3}", "split": splits[i],
                              "grid": Grid(0.0, 0.0, size, size, 2.0).to_dict()})
    return DatasetStore.open(path)


CONFIG = """
[ckmdiff]
dataset = "{dataset}"
[encoding]
gain_range_db = [-120.0, -60.0]
[[degradation]]
steps = [{{kind = "subsample", factor = 4}}]
[[degradation]]
steps = [{{kind = "box_mask", size = 4}}, {{kind = "noise", std_px = 0.05}}]
[vae]
channels = [8, 16]
epochs = 3
learning_rate = 2e-3
batch_size = 4
[unet]
base_channels = 8
channel_mults = [1, 2]
[condition]
embed_dim = 8
depths = [1, 1]
num_heads = [2, 2]
window_size = 2
patch_size = 4
[train]
epochs = 3
learning_rate = 1e-3
batch_size = 4
"""


def test_tiny_two_stage_run_lowers_the_losses_and_the_method_predicts(tmp_path):
    from ckmsim.models.ckmdiff.method import CKMDiffMethod
    from ckmsim.models.ckmdiff.train import train_ckmdiff
    from ckmsim.train.trainer import read_history

    _store(tmp_path / "toy")
    config = tmp_path / "train.toml"
    config.write_text(CONFIG.format(dataset=(tmp_path / "toy").as_posix()))
    out = train_ckmdiff(config, out=str(tmp_path / "run"), log=lambda *_: None)
    vae_history, ddm_history = read_history(out / "vae"), read_history(out / "ddm")
    assert len(vae_history) == len(ddm_history) == 3
    assert vae_history[-1]["loss"] < vae_history[0]["loss"]
    assert ddm_history[-1]["loss"] < ddm_history[0]["loss"]
    timing = json.loads((out / "timing.json").read_text())
    # 3 epochs of ceil(8 train maps / 4) steps of 4 examples per stage
    assert timing["vae"]["examples"] == timing["diffusion"]["examples"] == 24
    assert timing["vae"]["examples_per_s"] > 0 and timing["diffusion"]["examples_per_s"] > 0

    method = CKMDiffMethod.from_run(out, num_steps=2, num_samples=3, seed=4)
    truth = _truth(16, seed=11)
    observation = Degradation([Subsample(4)])(truth)
    samples = method.predict_samples(observation)
    assert samples.shape == (3, 16, 16)
    building = truth["building"].values
    assert np.isnan(samples[:, building]).all() and np.isfinite(samples[:, ~building]).all()
    assert np.all((samples[:, ~building] >= -120.0) & (samples[:, ~building] <= -60.0))
    np.testing.assert_array_equal(method.predict_samples(observation), samples)  # seeded
    # a per-call step count is the method built with that count (same network, same seed)
    one_step = CKMDiffMethod(out, num_steps=1, num_samples=3, seed=4)
    one_step.model_ = method.model_
    np.testing.assert_array_equal(method.predict_samples(observation, num_steps=1),
                                  one_step.predict_samples(observation))
    assert np.nanmax(np.abs(method.predict_samples(observation, num_steps=1) - samples)) > 0
    with pytest.raises(CkmsimError, match="num_steps"):
        method.predict_samples(observation, num_steps=0)
    ckm = method.predict(observation)
    np.testing.assert_allclose(ckm["gain_db"].values, samples.mean(axis=0))
    assert ckm.attrs["method"] == "ckmdiff" and ckm.attrs["task"] == "sr_x4"
    # a task it was not trained for is unsupported, and says which tasks it knows
    other = Degradation([GaussianNoise(std_px=0.1)])(truth)
    assert "sr_x4" in method.unsupported_reason(other)
    with pytest.raises(CkmsimError, match="trained for tasks"):
        method.predict(other)


def test_train_config_names_bad_entries(tmp_path):
    from ckmsim.models.ckmdiff.train import load_ckmdiff_train_config

    path = tmp_path / "bad.toml"
    path.write_text(CONFIG.format(dataset="x").replace("factor = 4", "factr = 4"))
    with pytest.raises(CkmsimError, match="factr"):
        load_ckmdiff_train_config(path)
    path.write_text(CONFIG.format(dataset="x").replace("[unet]", "[unet]\nwidth = 3"))
    with pytest.raises(CkmsimError, match="width"):
        load_ckmdiff_train_config(path)
    path.write_text(CONFIG.format(dataset="x").replace("[condition]\nembed_dim = 8\ndepths = [1, 1]\n"
                                                       "num_heads = [2, 2]\nwindow_size = 2\npatch_size = 4\n", ""))
    with pytest.raises(CkmsimError, match="condition"):
        load_ckmdiff_train_config(path)


def test_shipped_training_configs_parse_with_the_papers_settings():
    from pathlib import Path

    from ckmsim.models.ckmdiff.train import load_ckmdiff_train_config

    folder = Path(__file__).parents[2] / "experiments" / "ckmdiff"
    configs = {path.name: load_ckmdiff_train_config(path) for path in sorted(folder.glob("train-*.toml"))}
    assert {"train-cpu.toml", "train-gpu.toml", "train-radiomapseer-sr.toml",
            "train-ckmimagenet-sr.toml"} <= set(configs)
    # the paper's pixel mappings, eqs. (27)-(28), and its box sizes (a quarter of the side)
    assert configs["train-radiomapseer-inpainting.toml"].encoding.gain_range_db == (-147.0, -47.0)
    assert configs["train-ckmimagenet-inpainting.toml"].encoding.gain_range_db == (-250.0, -50.0)
    assert configs["train-radiomapseer-inpainting.toml"].degradations[0].task.startswith("box64x64")
    assert configs["train-ckmimagenet-inpainting.toml"].degradations[0].task.startswith("box32x32")
    # Tables I-II: 300k / 200k iterations on RadioMapSeer, 400k / 300k on CKMImageNet
    iterations = {name: c.settings.epochs * c.settings.steps_per_epoch for name, c in configs.items()}
    assert iterations["train-radiomapseer-inpainting.toml"] == 300_000
    assert iterations["train-radiomapseer-sr.toml"] == 200_000
    assert iterations["train-ckmimagenet-inpainting.toml"] == 400_000
    assert iterations["train-ckmimagenet-sr.toml"] == 300_000

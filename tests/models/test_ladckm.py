"""LAD-CKM (issue 16): radiators, rendering eq. (7) against closed forms, the ADM and RARE-Net shapes, save/load."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.models.ladckm.radiators import fibonacci_directions, radial_intervals

NC = 6
FREQS = 6.765 + (np.arange(NC) - NC // 2) * 312.5e-6


def test_fibonacci_directions_are_unit_vectors_spread_evenly():
    """Unit norm; equal-area bands: the heights are exactly uniform on (-1, 1) (Archimedes: a band of the sphere
    has area proportional to its height), so every band of equal height holds the same number of points; no
    two points closer than the grid's spacing allows; the mean is near the centre."""
    n = 400
    d = fibonacci_directions(n)
    assert d.shape == (n, 3) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.sort(d[:, 2]), 1.0 - (2 * np.arange(n)[::-1] + 1) / n, atol=1e-6)
    counts, _ = np.histogram(d[:, 2], bins=8, range=(-1, 1))
    assert counts.tolist() == [n // 8] * 8
    # azimuthal balance inside each band, and a minimum spacing of the order of sqrt(4 pi / n)
    assert np.linalg.norm(d.mean(axis=0)) < 0.02
    cosines = d @ d.T - 2 * np.eye(n)
    min_angle = np.arccos(np.clip(cosines.max(), -1, 1))
    assert min_angle > 0.5 * np.sqrt(4 * np.pi / n)
    with pytest.raises(CkmsimError, match="num_directions"):
        fibonacci_directions(0)


def test_radial_intervals_uniform_and_stratified():
    even = radial_intervals(3, 4, 100.0)
    np.testing.assert_array_equal(even, np.full((3, 4), 25.0, np.float32))
    drawn = radial_intervals(5, 4, 100.0, np.random.default_rng(0))
    assert drawn.shape == (5, 4) and (drawn > 0).all() and (drawn < 50.0).all()
    assert not np.allclose(drawn, 25.0)
    with pytest.raises(CkmsimError, match="max_distance_m"):
        radial_intervals(3, 4, -1.0)


def test_render_single_radiator_and_two_on_a_ray_equal_their_closed_forms():
    from ckmsim.models.ladckm.network import render

    rng = np.random.default_rng(1)
    # one ray, one radiator: H = (1 - exp(-sigma delta)) C
    sigma = rng.uniform(0.01, 0.2, size=(1, 1, 1, 2, 3, NC)).astype(np.float32)
    coefficients = rng.normal(size=(1, 1, 1, 2, 3, 2 * NC)).astype(np.float32)
    delta = np.array([[[7.0]]], np.float32)
    h = np.asarray(render(sigma, coefficients, delta))
    alpha = 1 - np.exp(-sigma[0, 0, 0] * 7.0)
    np.testing.assert_allclose(h[0], np.concatenate([alpha, alpha], -1) * coefficients[0, 0, 0], rtol=1e-5)
    # one ray, two radiators: the second is seen through the first, T_2 = exp(-sigma_1 delta_1)
    sigma2 = rng.uniform(0.01, 0.2, size=(1, 1, 2, 1, 1, NC)).astype(np.float32)
    c2 = rng.normal(size=(1, 1, 2, 1, 1, 2 * NC)).astype(np.float32)
    d2 = np.array([[[3.0, 5.0]]], np.float32)
    a1 = 1 - np.exp(-sigma2[0, 0, 0] * 3.0)
    a2 = 1 - np.exp(-sigma2[0, 0, 1] * 5.0)
    weights = [a1, (1 - a1) * a2]
    expected = sum(np.concatenate([w, w], -1) * c2[0, 0, j] for j, w in enumerate(weights))
    np.testing.assert_allclose(np.asarray(render(sigma2, c2, d2))[0], expected, rtol=1e-5)


def _model(**changes):
    from ckmsim.models.ladckm.network import LadCkm

    settings = dict(num_subcarriers=NC, frequencies_ghz=FREQS, num_directions=5, num_samples=3, max_distance_m=60.0,
                    width=8, adm_hidden=8, radial_hidden=4)
    settings.update(changes)
    return LadCkm(**settings)


@pytest.mark.parametrize("num_ue_antennas", [1, 4])
def test_shapes_for_one_and_four_ue_antennas_and_save_load(tmp_path, num_ue_antennas):
    import keras

    model = _model()
    rng = np.random.default_rng(2)
    x = {"uplink": rng.normal(size=(2, num_ue_antennas, 8, 2 * NC)).astype(np.float32),
         "partial_downlink": np.zeros((2, num_ue_antennas, 8, 2 * NC), np.float32),
         "intervals": radial_intervals(5, 3, 60.0, rng)[None].repeat(2, 0)}
    y = np.asarray(model(x))
    assert y.shape == (2, num_ue_antennas, 8, 2 * NC) and np.isfinite(y).all()
    # the untrained ADM passes the straight-through queries on (last convolutions zero)
    queries = np.asarray(model.angular([x["uplink"], x["partial_downlink"], model.directions]))
    np.testing.assert_allclose(queries, np.repeat(x["uplink"][:, None], 15, axis=1), atol=1e-6)
    model.save(tmp_path / "ladckm.keras")
    loaded = keras.saving.load_model(tmp_path / "ladckm.keras")
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(np.asarray(loaded(x)), y, atol=1e-6)


def test_nmse_loss_closed_form_and_scale_invariance():
    from ckmsim.models.ladckm.network import nmse_loss

    rng = np.random.default_rng(3)
    truth = rng.normal(size=(2, 1, 4, 2 * NC)).astype(np.float32)
    assert np.allclose(np.asarray(nmse_loss(truth, truth)), 0.0)
    np.testing.assert_allclose(np.asarray(nmse_loss(truth, np.zeros_like(truth))), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(nmse_loss(truth, 1.5 * truth)), 0.25, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(nmse_loss(10 * truth, 15 * truth)), 0.25, rtol=1e-5)


def test_bad_settings_and_inputs_are_named():
    with pytest.raises(CkmsimError, match="num_directions"):
        _model(num_directions=0)
    with pytest.raises(CkmsimError, match="max_distance_m"):
        _model(max_distance_m=0.0)
    with pytest.raises(CkmsimError, match="one frequency per subcarrier"):
        _model(frequencies_ghz=FREQS[:3])
    with pytest.raises(CkmsimError, match="2 N_c"):
        _model().check_inputs((2, 1, 8, 2 * NC + 1))


# ----------------------------------------------------------------------------------------------------------
# Tensors
# ----------------------------------------------------------------------------------------------------------

def test_used_subcarriers_pilots_and_image_round_trip():
    from ckmsim.models.ladckm.data import LadCkmEncoding, from_image, pilot_mask, to_image, used_subcarriers

    used = used_subcarriers(64)
    offsets = np.arange(64) - 32
    assert len(used) == 52 and 0 not in offsets[used] and offsets[used].min() == -26 and offsets[used].max() == 26
    mask = pilot_mask(52, 16, 4)
    assert mask.shape == (4, 16, 52) and mask.mean() == pytest.approx(0.125)
    assert mask[:, 0, 0].all() and not mask[:, 1, 0].any() and not mask[:, 0, 1].any() and mask[:, 2, 4].all()
    assert LadCkmEncoding(subcarrier_step=0).pilot_overhead(16) == 0.0
    assert LadCkmEncoding().pilot_overhead(32, 4) == pytest.approx(0.125)
    rng = np.random.default_rng(4)
    h = (rng.normal(size=(3, 5, 2, 4)) + 1j * rng.normal(size=(3, 5, 2, 4))).astype(np.complex64)
    image = to_image(h)
    assert image.shape == (3, 2, 4, 10)
    np.testing.assert_array_equal(image[1, 0, 3, :5], h[1, :, 0, 3].real)
    np.testing.assert_array_equal(from_image(image), h)
    with pytest.raises(CkmsimError, match="even"):
        used_subcarriers(64, 51)


def test_encoding_normalises_by_the_uplink_and_feeds_the_pilots_only():
    from ckmsim.models.ladckm.data import LadCkmEncoding

    rng = np.random.default_rng(5)
    h_dl = (rng.normal(size=(2, 64, 1, 8)) + 1j * rng.normal(size=(2, 64, 1, 8))) * np.array([1e-4, 1e-7])[:, None, None, None]
    h_ul = np.swapaxes(h_dl, -1, -2) * 1.1
    encoding = LadCkmEncoding()
    inputs, scale = encoding.encode(h_ul, h_dl)
    assert inputs["uplink"].shape == (2, 1, 8, 104)
    np.testing.assert_allclose(np.sqrt(np.mean(inputs["uplink"] ** 2, axis=(1, 2, 3)) * 2), 1.0, rtol=1e-5)
    target = encoding.target(h_dl, scale)
    partial = inputs["partial_downlink"]
    pilots = partial != 0
    # pilots on 13 of 52 subcarriers x 4 of 8 antennas, in both the real and the imaginary half
    assert pilots.sum() == 2 * 2 * 13 * 4
    np.testing.assert_array_equal(partial[pilots], target[pilots])
    np.testing.assert_allclose(encoding.decode(target, scale), h_dl[:, encoding.subcarriers(64)], rtol=1e-5)
    no_pilot, _ = LadCkmEncoding(subcarrier_step=0).encode(h_ul)
    assert not no_pilot["partial_downlink"].any()
    with pytest.raises(CkmsimError, match="h_dl=None"):
        encoding.encode(h_ul)


# ----------------------------------------------------------------------------------------------------------
# Training on a dynamic-CSI store
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dynamic_store(tmp_path_factory, tiny_dynamic_config):
    from ckmsim.data.builder import build_dataset

    config = tiny_dynamic_config("ladckm-tiny", num_map_paths=0)
    return build_dataset(config, tmp_path_factory.mktemp("ladckm") / "store", progress=False, log=lambda m: None)


def test_training_runs_resumes_and_records_its_settings(tmp_path, dynamic_store):
    import json

    from ckmsim.models.ladckm.train import (RUN_INFO, LadCkmTrainConfig, load_ladckm_train_config, split_csi,
                                            train_ladckm_config)
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.train.trainer import TrainSettings, read_history

    train_split = split_csi(dynamic_store, "train", "block", 1, 1, 4, 1)
    test_split = split_csi(dynamic_store, "test", "block", 1, 1, 4, 1)
    assert set(train_split["block"]) == {0} and set(test_split["block"]) == {2}
    assert train_split["h_dl"].shape[1:] == (8, 1, 4) and train_split["h_ul"].shape[1:] == (8, 4, 1)
    area = split_csi(dynamic_store, "val", "area", 1, 1, 4, 1)
    assert set(area["block"]) == {0, 1, 2} and set(area["sample"]) == set(dynamic_store.indices("val").tolist())
    config = LadCkmTrainConfig(dataset=str(dynamic_store.path), out=str(tmp_path / "run"), num_bs_antennas=4,
                               encoding=LadCkmEncoding(num_used=6, subcarrier_step=2), test_blocks=1, val_blocks=1,
                               model={"num_directions": 4, "num_samples": 2, "width": 8, "adm_hidden": 8,
                                      "radial_hidden": 4},
                               settings=TrainSettings(epochs=2, learning_rate=1e-3, lr_patience=0), batch_size=4)
    out = train_ladckm_config(config, log=lambda m: None)
    info = json.loads((out / RUN_INFO).read_text())
    assert info["num_bs_antennas"] == 4 and info["encoding"]["subcarrier_step"] == 2 and len(info["frequencies_ghz"]) == 6
    assert len(read_history(out)) == 2 and all(np.isfinite(r["val_loss"]) for r in read_history(out))
    more = LadCkmTrainConfig(**{**config.__dict__, "settings": TrainSettings(epochs=3, learning_rate=1e-3,
                                                                               lr_patience=0)})
    with pytest.raises(CkmsimError, match="other settings"):
        train_ladckm_config(more, log=lambda m: None)
    # the same run folder layout serves the study's method face
    from ckmsim.models.ladckm.method import LadCkmMethod

    method = LadCkmMethod.from_run(out)
    assert method.downlink_pilot_overhead == pytest.approx(0.25) and method.label == "ladckm"
    test_csi = split_csi(dynamic_store, "test", "block", 1, 1, 4, 1)
    predicted = method.predict_downlink(test_csi["h_ul"], test_csi["h_dl"])
    assert predicted.shape == (len(test_csi["h_ul"]), 6, 1, 4) and np.isfinite(predicted).all()
    fire = LadCkmTrainConfig(dataset=str(dynamic_store.path), out=str(tmp_path / "fire"), model_kind="fire",
                             num_bs_antennas=4, encoding=LadCkmEncoding(num_used=6, subcarrier_step=0), test_blocks=1,
                             val_blocks=1, model={"latent_dim": 4, "width": 8},
                             settings=TrainSettings(epochs=1, learning_rate=1e-3, lr_patience=0), batch_size=4)
    fire_method = LadCkmMethod.from_run(train_ladckm_config(fire, log=lambda m: None))
    assert fire_method.label == "fire" and fire_method.downlink_pilot_overhead == 0.0
    assert fire_method.predict_downlink(test_csi["h_ul"]).shape == predicted.shape
    toml = tmp_path / "bad.toml"
    toml.write_text('[ladckm]\ndataset = "x"\n[split]\nby = "city"\n')
    with pytest.raises(CkmsimError, match="by must be one of"):
        load_ladckm_train_config(toml)


def test_shipped_experiment_configs_parse():
    """The CPU and GPU recipes of experiments/ladckm/ load (their datasets need not exist to be read)."""
    from pathlib import Path

    from ckmsim.data.config import load_dataset_config
    from ckmsim.models.ladckm.train import load_ladckm_train_config

    folder = Path(__file__).resolve().parents[2] / "experiments" / "ladckm"
    kinds = {name: load_ladckm_train_config(folder / f"{name}.toml").model_kind
             for name in ("train-cpu", "train-cpu-rho0", "train-gpu", "fire-cpu", "nerf2-cpu", "nerf2-gpu")}
    assert kinds == {"train-cpu": "ladckm", "train-cpu-rho0": "ladckm", "train-gpu": "ladckm", "fire-cpu": "fire",
                     "nerf2-cpu": "nerf2", "nerf2-gpu": "nerf2"}
    assert load_ladckm_train_config(folder / "train-cpu.toml").encoding.pilot_overhead(16) == pytest.approx(0.125)
    assert load_ladckm_train_config(folder / "train-cpu-rho0.toml").encoding.pilot_overhead(16) == 0.0
    gpu = load_dataset_config(folder / "dataset-gpu.toml")
    assert gpu.csi.num_ues == 2500 and gpu.dynamic.num_blocks == 20
    cpu = load_dataset_config(folder / "dataset-cpu.toml")
    assert (cpu.csi.uplink_hz, cpu.csi.downlink_hz, cpu.csi.num_subcarriers) == (6.715e9, 6.765e9, 64)


def _los_channels(num_ue: int, seed: int, csi):
    """Single line-of-sight paths from a BS at 8.5 m to UEs 50-50.5 m away (azimuths over 120 deg), on both
    carriers, through ckmsim's own path -> CSI code: the uplink and downlink differ by the carrier phase
    2 pi (f_D - f_U) tau (about 0.35 cycles here) and the array response at the two wavelengths."""
    from ckmsim.raytrace.csi import carrier_channel, paths_from_arrays

    rng = np.random.default_rng(seed)
    d, az = rng.uniform(50.0, 50.5, num_ue), rng.uniform(-60.0, 60.0, num_ue)
    dist = np.hypot(d, 8.5)
    el = -np.degrees(np.arctan2(8.5, d))
    tau = dist / 299_792_458.0
    out = {}
    for carrier, frequency in (("dl", csi.downlink_hz), ("ul", csi.uplink_hz)):
        a = (299_792_458.0 / frequency / (4 * np.pi * dist)) * np.exp(-2j * np.pi * frequency * tau)
        arrays = {"a": a[:, None].astype(np.complex64), "delay_s": tau[:, None].astype(np.float32),
                  "dep_az_deg": az[:, None].astype(np.float32), "dep_el_deg": el[:, None].astype(np.float32),
                  "arr_az_deg": (az + 180.0)[:, None].astype(np.float32), "arr_el_deg": -el[:, None].astype(np.float32),
                  "valid": np.ones((num_ue, 1), bool)}
        out[carrier] = carrier_channel(paths_from_arrays(arrays), csi, carrier)
    return out["ul"], out["dl"]


def test_learns_the_downlink_of_a_los_toy_from_the_uplink_alone():
    """LoS-only toy (rho = 0): copying the uplink gives NMSE ~4 (the carrier phase is ~0.35 cycles off), the
    untrained network ~1; a few hundred steps bring held-out UEs below 0.2."""
    import keras

    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.network import LadCkm, nmse_loss
    from ckmsim.raytrace.csi import CsiSettings

    csi = CsiSettings(num_subcarriers=64, bs_rows=1, bs_cols=8)
    encoding = LadCkmEncoding(subcarrier_step=0)
    ul, dl = _los_channels(64, 0, csi)
    x, scale = encoding.encode(ul, dl)
    y = encoding.target(dl, scale)
    ul_test, dl_test = _los_channels(32, 1, csi)
    x_test, scale_test = encoding.encode(ul_test, dl_test)
    y_test = encoding.target(dl_test, scale_test)
    assert float(np.mean(nmse_loss(y_test, x_test["uplink"]))) > 3.0
    frequencies = (csi.downlink_hz + csi.subcarrier_offsets_hz()[encoding.subcarriers(64)]) / 1e9
    keras.utils.set_random_seed(0)
    model = LadCkm(52, frequencies, num_directions=4, num_samples=2, width=8, adm_hidden=8, radial_hidden=4)
    assert float(np.mean(nmse_loss(y_test, model(x_test)))) > 0.9
    model.compile(keras.optimizers.Adam(3e-3), loss=nmse_loss)
    model.fit(x, y, batch_size=8, epochs=25, verbose=0)
    assert float(np.mean(nmse_loss(y_test, model(x_test)))) < 0.2

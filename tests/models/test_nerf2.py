"""NeRF2 (issue 16's radiance-field baseline): rays, positional encoding, rendering against a closed form,
shapes, learning a toy map, save/load."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.errors import CkmsimError


def test_rays_and_positional_encoding():
    from ckmsim.models.nerf2.network import positional_encoding, ray_directions

    d = ray_directions(36, 9)
    assert d.shape == (324, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-12)
    # symmetric grid: the directions cancel, the elevations avoid the poles
    np.testing.assert_allclose(d.mean(axis=0), 0.0, atol=1e-12)
    assert np.abs(d[:, 2]).max() < np.sin(np.radians(81)) + 1e-9
    x = np.array([[0.25, -0.5, 0.0]], np.float32)
    encoded = np.asarray(positional_encoding(x, 2))
    expected = np.concatenate([x, np.sin(np.pi * x), np.cos(np.pi * x), np.sin(2 * np.pi * x), np.cos(2 * np.pi * x)], -1)
    np.testing.assert_allclose(encoded, expected, atol=1e-6)


def _model(**changes):
    from ckmsim.models.nerf2.network import NeRF2

    settings = dict(num_subcarriers=3, antenna_positions_m=np.array([[0, -0.01, 0], [0, 0.01, 0]]), num_ue_antennas=1,
                    num_azimuth=4, num_elevation=2, num_samples=3, max_distance_m=30.0, depth=4, width=16,
                    skip_layer=2, pe_levels=3)
    settings.update(changes)
    return NeRF2(**settings)


def test_rendering_equals_the_closed_form_of_its_weights():
    """With every radiated phase and the phase rates zero, the output is mean_rays sum_m T_m (1 - exp(-s_m)) a_m,
    recomputed here from the network's own sigma and amplitude by the closed form of the accumulation."""
    import keras

    from ckmsim.models.nerf2.network import positional_encoding

    model = _model()
    x = {"uplink": np.random.default_rng(0).normal(size=(2, 1, 2, 6)).astype(np.float32)}
    model(x)
    # zero the phase outputs: the attenuation head's phase-rate column and the signal's phase half
    kernel, bias = model.attenuation.head.get_weights()
    kernel[:, 1], bias[1] = 0.0, 0.0
    model.attenuation.head.set_weights([kernel, bias])
    kernel, bias = model.signal.get_weights()
    kernel[:, 3:], bias[3:] = 0.0, 0.0
    model.signal.set_weights([kernel, bias])
    out = np.asarray(model(x))
    assert np.allclose(out[..., 3:], 0.0, atol=1e-6)
    sigma, _, feature = (np.asarray(v) for v in model.attenuation(positional_encoding(model.points.reshape(-1, 3), 3)))
    nt, k, m = model.points.shape[:3]
    optical = sigma.reshape(nt, k, m)
    weights = np.exp(-(np.cumsum(optical, -1) - optical)) * (1 - np.exp(-optical))
    view = np.asarray(positional_encoding(model.directions, 1))
    view = np.broadcast_to(view[None, :, None, :], (nt, k, m, view.shape[-1])).reshape(nt * k * m, -1)
    h = np.asarray(model.radiance[0](np.concatenate([feature, view], -1)))[None] + np.asarray(
        model.condition_projection(model.condition(x["uplink"].reshape(2, -1))))[:, None]
    h = np.asarray(model.radiance[1](np.maximum(h, 0.0)))
    amplitude = np.log1p(np.exp(np.asarray(model.signal(h))[..., :3])).reshape(2, nt, k, m, 1, 3)
    expected = np.einsum("nkm,bnkmrf->brnf", weights, amplitude) / k
    np.testing.assert_allclose(out[..., :3], expected, rtol=1e-4, atol=1e-6)
    del keras


def test_nerf2_learns_a_static_field_and_round_trips(tmp_path):
    """NeRF2's field is the static scene around the BS: a downlink that is the same for every UE (whatever its
    uplink) is learned to a small NMSE in a few hundred steps."""
    import keras

    from ckmsim.models.ladckm.network import nmse_loss

    rng = np.random.default_rng(1)
    h = rng.normal(size=(48, 1, 2, 3)) + 1j * rng.normal(size=(48, 1, 2, 3))
    image = lambda z: np.concatenate([z.real, z.imag], axis=-1).astype(np.float32)  # noqa: E731
    static = rng.normal(size=(1, 1, 2, 3)) + 1j * rng.normal(size=(1, 1, 2, 3))
    x, y = {"uplink": image(h)}, np.repeat(image(static), 48, axis=0)
    keras.utils.set_random_seed(0)
    model = _model()
    before = float(np.mean(nmse_loss(y, model(x))))
    model.compile(keras.optimizers.Adam(3e-3), loss=nmse_loss)
    model.fit(x, y, batch_size=16, epochs=60, verbose=0)
    after = float(np.mean(nmse_loss(y, model(x))))
    assert after < 0.5 * min(before, 1.0)
    model.save(tmp_path / "nerf2.keras")
    loaded = keras.saving.load_model(tmp_path / "nerf2.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    with pytest.raises(CkmsimError, match="built for uplink images"):
        model({"uplink": np.zeros((1, 1, 3, 6), np.float32)})
    with pytest.raises(CkmsimError, match="skip_layer"):
        _model(skip_layer=4)


def test_nerf2_trains_through_the_ladckm_config_uplink_only():
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.train import LadCkmTrainConfig, build_model

    with pytest.raises(CkmsimError, match="nerf2 predicts the downlink from the uplink alone"):
        LadCkmTrainConfig(dataset="x", out="y", model_kind="nerf2", encoding=LadCkmEncoding())
    config = LadCkmTrainConfig(dataset="x", out="y", model_kind="nerf2", num_bs_antennas=8,
                               encoding=LadCkmEncoding(subcarrier_step=0),
                               model={"num_azimuth": 4, "num_elevation": 2, "num_samples": 2, "depth": 3, "width": 8,
                                      "skip_layer": 1, "pe_levels": 1})
    model = build_model(config, np.linspace(6.76, 6.77, 4), spacing_m=0.02)
    # the rays start at the 2 x 4 UPA's elements, 2 cm apart, about its centre
    positions = np.array(model.antenna_positions_m)
    assert positions.shape == (8, 3) and np.allclose(positions.mean(axis=0), 0.0)
    assert sorted(np.unique(np.round(positions[:, 1], 6))) == pytest.approx([-0.03, -0.01, 0.01, 0.03])

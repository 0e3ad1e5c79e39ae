"""FIRE (issue 16's VAE baseline): shapes, the KL term, learning a fixed map on a toy set, save/load, errors."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.errors import CkmsimError


def test_fire_learns_a_fixed_uplink_to_downlink_map_and_round_trips(tmp_path):
    """A toy FDD channel whose downlink is a fixed per-antenna phase rotation of the uplink: the VAE's NMSE
    falls far below the untrained one (1: an output near zero) in a few hundred steps; the KL term is added in
    training only; inference (the latent mean) is deterministic and survives save/load."""
    import keras

    from ckmsim.models.fire.network import Fire
    from ckmsim.models.ladckm.network import nmse_loss

    rng = np.random.default_rng(0)
    num_ue, nt, nc = 64, 4, 3
    h = rng.normal(size=(num_ue, 1, nt, nc)) + 1j * rng.normal(size=(num_ue, 1, nt, nc))
    rotation = np.exp(1j * np.linspace(0, np.pi, nt))[None, None, :, None]
    image = lambda z: np.concatenate([z.real, z.imag], axis=-1).astype(np.float32)  # noqa: E731
    x, y = {"uplink": image(h)}, image(h * rotation)
    keras.utils.set_random_seed(0)
    model = Fire(nc, nt, 1, latent_dim=16, width=16, kl_weight=1e-4)
    before = float(np.mean(nmse_loss(y, model(x))))
    model.compile(keras.optimizers.Adam(3e-3), loss=nmse_loss)
    model.fit(x, y, batch_size=16, epochs=60, verbose=0)
    after = float(np.mean(nmse_loss(y, model(x))))
    assert before > 0.8 and after < 0.3 * before
    model(x, training=True)
    assert len(model.losses) == 1 and float(model.losses[0]) >= 0
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(x)))
    model.save(tmp_path / "fire.keras")
    loaded = keras.saving.load_model(tmp_path / "fire.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    with pytest.raises(CkmsimError, match="built for uplink images"):
        model({"uplink": np.zeros((2, 1, nt + 1, 2 * nc), np.float32)})
    with pytest.raises(CkmsimError, match="kl_weight"):
        Fire(nc, nt, kl_weight=-1.0)


def test_fire_trains_through_the_ladckm_config_uplink_only(tmp_path):
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.train import LadCkmTrainConfig

    with pytest.raises(CkmsimError, match="subcarrier_step = 0"):
        LadCkmTrainConfig(dataset="x", out="y", model_kind="fire", encoding=LadCkmEncoding())
    with pytest.raises(CkmsimError, match="num_directions"):
        LadCkmTrainConfig(dataset="x", out="y", model_kind="fire", encoding=LadCkmEncoding(subcarrier_step=0),
                          model={"num_directions": 4})
    assert LadCkmTrainConfig(dataset="x", out="y", model_kind="fire", encoding=LadCkmEncoding(subcarrier_step=0),
                             model={"latent_dim": 8}).run_record()["model_kind"] == "fire"

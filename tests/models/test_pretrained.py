"""The E-SRResNet networks shipped in the package: present, documented, the paper's structure, usable as a Method."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import tomllib

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import validate_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.models.pretrained import DEFAULT_ESRRESNET, PRETRAINED, pretrained_dir, pretrained_esrresnet, provenance

pytest.importorskip("keras")

from ckmsim.models.esrresnet.network import MultiHeadSelfAttention, MultiScaleFusion, ResidualBlock  # noqa: E402


@pytest.fixture(scope="module")
def shipped():
    return pretrained_esrresnet().fit()


def test_every_shipped_set_has_its_files_and_provenance():
    for name in PRETRAINED:
        folder = pretrained_dir(name)
        info = provenance(name)
        for role in ("primary", "secondary"):
            network = info["networks"][role]
            assert (folder / network["file"]).stat().st_size < 8 * 2**20  # "small": a few MB each
            assert network["best_val_loss"] > 0 and network["train_samples_per_s_cpu"] > 0
        # the exact dataset and training configs are recorded and parse; the held-out scenes are named
        dataset = tomllib.loads(info["dataset"]["config_toml"])
        assert dataset["split"]["test_scenes"]
        assert info["dataset"]["splits"]["train"] > 0 and info["dataset"]["splits"]["test"] > 0
        assert "[[runs]]" in info["training"]["config_toml"]
        assert any(command.startswith("ckmsim train esrresnet") for command in info["commands"])


def test_shipped_networks_are_e_srresnet_with_attention_and_fusion(shipped):
    primary, secondary = shipped.models_
    assert primary.input_shape[-1] == 5 and secondary.input_shape[-1] == 4  # Sec. IV-A inputs
    for model in (primary, secondary):
        blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
        assert blocks and all(isinstance(block.attention, MultiHeadSelfAttention) for block in blocks)
        assert any(isinstance(layer, MultiScaleFusion) for layer in model.layers)
        assert model.output_shape[-1] == 2


def test_shipped_method_completes_an_x2_map_and_declines_x4(shipped):
    from test_esrresnet import _truth  # the synthetic two-path CKM of the E-SRResNet tests

    truth = _truth(np.random.default_rng(0), n=32)
    prediction = shipped.predict(Degradation([Subsample(2)])(truth))
    validate_ckm(prediction)
    open_cells = ~truth["building"].values
    assert np.all(np.isfinite(prediction["path_gain_db"].values[:2][:, open_cells]))
    assert np.all(np.abs(prediction["aoa_az_deg"].values[:2][:, open_cells]) <= 180.0)
    assert "factor=4" in shipped.unsupported_reason(Degradation([Subsample(4)])(truth))


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(CkmsimError, match="esrresnet-cpu"):
        pretrained_esrresnet("esrresnet-full")
    assert DEFAULT_ESRRESNET in PRETRAINED

"""The networks shipped in the package (E-SRResNet, CKMDiff): present, documented, the paper's structure, usable
as a Method, and better than bicubic on held-out maps."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json
import tempfile
import tomllib
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from ckmsim.baselines.interpolation import Bicubic
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm, validate_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.models.pretrained import DEFAULT_ESRRESNET, PRETRAINED, pretrained_dir, pretrained_esrresnet, provenance

pytest.importorskip("keras")

from ckmsim.models.esrresnet.data import GUIDE_CHANNELS  # noqa: E402
from ckmsim.models.esrresnet.method import input_shapes  # noqa: E402
from ckmsim.models.esrresnet.network import MultiHeadSelfAttention, MultiScaleFusion, ResidualBlock  # noqa: E402

FIXTURE = Path(__file__).parent / "data" / "esrresnet-heldout.npz"
#: Pooled (PGM dB, PAM deg) RMSE of the shipped networks on the fixture, per (factor, path), measured at export
#: (x4 is the bicubic-then-network cascade; bicubic there 11.00 / 31.53 and 10.89 / 45.89)
SHIPPED_HELDOUT_RMSE = {(2, 0): (6.850, 20.72), (2, 1): (6.702, 33.26),   # bicubic 7.27 / 21.84, 6.84 / 33.82
                        (4, 0): (10.49, 30.97), (4, 1): (10.54, 44.58)}


@pytest.fixture(scope="module")
def shipped():
    return pretrained_esrresnet().fit()


def test_every_shipped_e_srresnet_set_has_its_files_and_provenance():
    for name in (name for name, shipped in PRETRAINED.items() if shipped.package == "esrresnet"):
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
    # Sec. IV-A priors: LoS, building, BS map on the primary path; no LoS on the secondary
    assert shipped.encoders_[0].priors == ("los", "building", "bs_gaussian")
    assert shipped.encoders_[1].priors == ("building", "bs_gaussian")
    for model, encoder in zip((primary, secondary), shipped.encoders_):
        assert [shape[-1] for shape in input_shapes(model)] == [encoder.num_input_channels, 4, len(GUIDE_CHANNELS)]
        blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
        assert blocks and all(isinstance(block.attention, MultiHeadSelfAttention) for block in blocks)
        assert any(isinstance(layer, MultiScaleFusion) for layer in model.layers)
        assert model.output_shape[-1] == 4


def load_heldout_fixture(path: Path = FIXTURE) -> list:
    """The ground-truth CKMs of ``data/esrresnet-heldout.npz`` (or ``path``): samples of the test cities of the
    shipped networks' dataset (``experiments/esrresnet/export_fixture.py``), which their training never saw."""
    arrays = np.load(path)
    ckms = []
    for number in sorted({int(key.split("/")[0]) for key in arrays.files}):
        attrs = json.loads(str(arrays[f"{number}/attrs"]))
        grid = Grid(**attrs["grid"])
        variables = {key.split("/")[1]: arrays[key] for key in arrays.files
                     if key.startswith(f"{number}/") and not key.endswith("/attrs")}
        ckms.append(make_ckm(grid, variables, attrs))
    return ckms


def _pooled_rmse(method, ckms, path: int, factor: int) -> tuple[float, float]:
    """PGM [dB] and PAM [deg] RMSE over the open cells where the true path exists (Table I's cells)."""
    gain_errors, angle_errors = [], []
    for truth in ckms:
        prediction = method.predict(Degradation([Subsample(factor)])(truth))
        true_gain = truth["path_gain_db"].values[path]
        scored = ~truth["building"].values & (true_gain > GAIN_FLOOR_DB)
        gain_errors.append(prediction["path_gain_db"].values[path][scored] - true_gain[scored])
        true_az, pred_az = truth["aoa_az_deg"].values[path], prediction["aoa_az_deg"].values[path]
        finite = scored & np.isfinite(true_az) & np.isfinite(pred_az)
        angle_errors.append(angle_difference_deg(pred_az[finite], true_az[finite]))
    return (float(np.sqrt(np.mean(np.square(np.concatenate(gain_errors))))),
            float(np.sqrt(np.mean(np.square(np.concatenate(angle_errors))))))


@pytest.mark.parametrize("factor", [2, 4])
def test_shipped_weights_beat_bicubic_on_held_out_cities(shipped, factor):
    ckms = load_heldout_fixture()
    assert {ckm.attrs["sample_id"].split("/")[0] for ckm in ckms} == {"city-s2", "city-t10"}
    for path in (0, 1):
        network = _pooled_rmse(shipped, ckms, path, factor)
        bicubic = _pooled_rmse(Bicubic(), ckms, path, factor)
        for value, reference, target in zip(network, bicubic, SHIPPED_HELDOUT_RMSE[factor, path]):
            assert value < reference  # the learned method earns its place on cities it never saw
            assert value == pytest.approx(target, rel=0.02)  # regression: the shipped weights and decoding


#: Mean 64-element broadside beam gain (snap.broadside_beam_gain) of the shipped method's azimuths on the
#: fixture's unmeasured path cells, per (factor, path), measured at export (bicubic: 0.367, 0.180, 0.223, 0.106)
SHIPPED_HELDOUT_BEAM_GAIN = {(2, 0): 0.3831, (2, 1): 0.2286, (4, 0): 0.2281, (4, 1): 0.1102}


def _mean_beam_gain(method, ckms, path: int, factor: int) -> float:
    from ckmsim.models.esrresnet.snap import broadside_beam_gain

    gains = []
    for truth in ckms:
        observation = Degradation([Subsample(factor)])(truth)
        predicted = method.predict(observation)["aoa_az_deg"].values[path]
        true = truth["aoa_az_deg"].values[path]
        cells = (~truth["building"].values & (truth["path_gain_db"].values[path] > GAIN_FLOOR_DB)
                 & ~observation.observed & np.isfinite(true))
        gains.append(broadside_beam_gain(angle_difference_deg(predicted[cells], true[cells]), 64))
    return float(np.mean(np.concatenate(gains)))


@pytest.mark.parametrize("factor", [2, 4])
def test_shipped_azimuths_steer_a_narrow_beam_better_than_bicubic(shipped, factor):
    # a lower RMSE alone can hide a degree of noise on every cell, which a 2-degree beam cannot afford
    ckms = load_heldout_fixture()
    for path in (0, 1):
        gain = _mean_beam_gain(shipped, ckms, path, factor)
        assert gain > _mean_beam_gain(Bicubic(), ckms, path, factor)
        assert gain == pytest.approx(SHIPPED_HELDOUT_BEAM_GAIN[factor, path], rel=0.02)


def test_shipped_method_keeps_measured_cells_and_declines_other_lattices(shipped):
    truth = load_heldout_fixture()[0]
    for factor in (2, 4):
        observation = Degradation([Subsample(factor)])(truth)
        prediction = shipped.predict(observation)
        validate_ckm(prediction)
        seen = observation.observed
        np.testing.assert_array_equal(prediction["path_gain_db"].values[:2][:, seen],
                                      truth["path_gain_db"].values[:2][:, seen])
    assert "factor=3" in shipped.unsupported_reason(Degradation([Subsample(3)])(truth))


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(CkmsimError, match="esrresnet-cpu"):
        pretrained_esrresnet("esrresnet-full")
    assert DEFAULT_ESRRESNET in PRETRAINED


# ------------------------------------------------------------------------------------------------------ CKMDiff

CKMDIFF_FIXTURE = Path(__file__).parent / "data" / "ckmdiff-heldout.npz"
#: Gain MSE [dB^2] of the shipped CKMDiff (its defaults: S = 2, mean of 4 draws, seed 0) and of bicubic on the
#: fixture's unmeasured open cells (8 maps of held-out city-s2, 8 tiles), both clipped to the model's pixel range,
#: per sub-sampling factor; measured at export (one draw at S = 10: 249.2 and 189.4)
CKMDIFF_HELDOUT_MSE = {4: (225.09, 291.98), 2: (152.42, 180.70)}   # float16-stored weights


def test_shipped_ckmdiff_has_its_files_and_provenance():
    from ckmsim.models.ckmdiff.method import SHIPPED_MODEL_FILE

    name = "ckmdiff-cpu"
    folder = pretrained_dir(name, "ckmdiff")
    info = provenance(name)
    # 2.9 M parameters stored in float16 (a few MB), loaded into float32 variables
    assert (folder / SHIPPED_MODEL_FILE).stat().st_size < 6 * 2**20 and info["stored_precision"] == "float16"
    with zipfile.ZipFile(folder / SHIPPED_MODEL_FILE) as archive, tempfile.TemporaryDirectory() as tmp:
        archive.extract("model.weights.h5", tmp)
        with h5py.File(Path(tmp) / "model.weights.h5") as weights:
            dtypes = set()
            weights.visititems(lambda _, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert np.dtype(np.float16) in dtypes and np.dtype(np.float32) not in dtypes
    assert {"sr_x2", "sr_x4", "generation"} <= set(info["tasks"])
    dataset = tomllib.loads(info["dataset"]["config_toml"])
    assert dataset["split"]["test_scenes"] and info["dataset"]["splits"]["train"] > 0
    training = tomllib.loads(info["training"]["config_toml"])
    assert len(training["degradation"]) == len(info["tasks"])
    for stage in ("vae", "diffusion"):
        assert info["stages"][stage]["best_val_loss"] > 0 and info["stages"][stage]["examples_per_s_cpu"] > 0
    assert any(command.startswith("ckmsim train ckmdiff") for command in info["commands"])
    with pytest.raises(CkmsimError, match="ckmdiff-cpu"):
        pretrained_dir("esrresnet-cpu", "ckmdiff")


@pytest.mark.parametrize("factor", [4, 2])
def test_shipped_ckmdiff_beats_bicubic_on_held_out_maps(factor):
    from ckmsim.models.pretrained import pretrained_ckmdiff

    method = pretrained_ckmdiff().fit()
    low, high = method.encoding_.gain_range_db
    errors = {"ckmdiff": [], "bicubic": []}
    for truth in load_heldout_fixture(CKMDIFF_FIXTURE):
        observation = Degradation([Subsample(factor)])(truth)
        cells = ~truth["building"].values & ~observation.observed
        true_db = np.clip(truth["gain_db"].values[cells], low, high)
        for name, predictor in (("ckmdiff", method), ("bicubic", Bicubic())):
            predicted = np.clip(predictor.predict(observation)["gain_db"].values[cells], low, high)
            errors[name].append((predicted - true_db) ** 2)
    ckmdiff, bicubic = (float(np.mean(np.concatenate(v))) for v in errors.values())
    expected_ckmdiff, expected_bicubic = CKMDIFF_HELDOUT_MSE[factor]
    assert bicubic == pytest.approx(expected_bicubic, rel=1e-3)   # the fixture and bicubic are deterministic
    assert ckmdiff == pytest.approx(expected_ckmdiff, rel=0.05)
    assert ckmdiff < 0.9 * bicubic


# ----------------------------------------------------------------------------------------------------------
# LAD-CKM and its baselines (issue 16)
# ----------------------------------------------------------------------------------------------------------

LADCKM_FIXTURE = Path(__file__).parent / "data" / "ladckm-heldout.npz"
#: NMSE (eq. (12)) of the shipped 16 x 1 networks on the fixture's 24 UEs of future blocks of the test tile,
#: measured at export; copying the uplink scores 2.51 there.
LADCKM_HELDOUT_NMSE = {"ladckm-16x1-rho4": 0.0237, "ladckm-16x1": 0.6275, "fire-16x1": 0.4676}


def test_shipped_ladckm_set_predicts_held_out_downlink_csi():
    """On UEs of coherence blocks and a tile the training never saw: LAD-CKM with rho = 0.125 pilots predicts the
    downlink to a small NMSE, the uplink-only networks (LAD-CKM rho = 0, FIRE) well below copying the uplink
    (whose carrier-phase error makes it worse than predicting zero); each pays the overhead it declares."""
    from ckmsim.models.ladckm.data import used_subcarriers
    from ckmsim.models.pretrained import pretrained_ladckm

    fixture = np.load(LADCKM_FIXTURE)
    h_ul, h_dl = fixture["h_ul"], fixture["h_dl"]
    truth = h_dl[:, used_subcarriers(h_dl.shape[1])]

    def nmse(predicted):
        error = np.sum(np.abs(predicted - truth) ** 2, axis=(2, 3))
        return float(np.mean(error / np.sum(np.abs(truth) ** 2, axis=(2, 3))))

    copy = nmse(np.swapaxes(h_ul[:, used_subcarriers(h_ul.shape[1])], -1, -2))
    assert copy > 2.0
    for name, expected in LADCKM_HELDOUT_NMSE.items():
        method = pretrained_ladckm(name)
        assert method.downlink_pilot_overhead == (pytest.approx(0.125) if name.endswith("rho4") else 0.0)
        assert nmse(method.predict_downlink(h_ul, h_dl)) == pytest.approx(expected, rel=0.05)
    assert LADCKM_HELDOUT_NMSE["ladckm-16x1-rho4"] < 0.05 and max(LADCKM_HELDOUT_NMSE.values()) < 0.3 * copy
    with pytest.raises(CkmsimError, match="no network"):
        pretrained_ladckm("nerf2-16x1")

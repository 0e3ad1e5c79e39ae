"""The CSI study (issue 16, :mod:`ckmsim.eval.csi_study`) on a tiny dynamic store: closed forms of its scores,
an oracle predictor, seeds folded into one scheme, the files of one config, and the errors of bad configs."""

import json
from pathlib import Path

import numpy as np
import pytest

from ckmsim.errors import CkmsimError

@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_dynamic_config):
    """The tiny dynamic store (``tiny_dynamic_config``) with the static 1-path maps that the location-based
    rows read."""
    from ckmsim.data.builder import build_dataset

    config = tiny_dynamic_config("csi-study-tiny", num_map_paths=1)
    return build_dataset(config, tmp_path_factory.mktemp("csi-study") / "store", progress=False, log=lambda m: None)


@pytest.fixture(scope="module")
def fire_runs(store, tmp_path_factory):
    """FIRE trained twice (seeds 0 and 1, one epoch) on the store's split by block (1 test, 1 val block)."""
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.train import LadCkmTrainConfig, train_ladckm_config
    from ckmsim.train.trainer import TrainSettings

    folder = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        config = LadCkmTrainConfig(dataset=str(store.path), out=str(folder / f"fire-4x1-s{seed}"), model_kind="fire",
                                   num_bs_antennas=4, encoding=LadCkmEncoding(num_used=6, subcarrier_step=0),
                                   test_blocks=1, val_blocks=1, model={"latent_dim": 4, "width": 8},
                                   settings=TrainSettings(epochs=1, learning_rate=1e-3, lr_patience=0, seed=seed),
                                   batch_size=4)
        train_ladckm_config(config, log=lambda m: None)
    return folder


def _write_config(path: Path, store, runs: str, **study) -> Path:
    values = {"dataset": str(store.path), "out": str(path.parent / "out"), "arrays": ["4x1"], "runs": [runs],
              "sigmas_m": [0, 5], "esnr_db": [0], "num_used": 6,
              **study}
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items())
    path.write_text(f"[study]\n{body}\n[split]\nby = \"block\"\ntest_blocks = 1\nval_blocks = 1\n")
    return path


def test_nmse_and_corruption_closed_forms():
    from ckmsim.eval.csi_study import corrupt, nmse

    rng = np.random.default_rng(0)
    h = (rng.normal(size=(5, 6, 2, 4)) + 1j * rng.normal(size=(5, 6, 2, 4))).astype(np.complex64)
    np.testing.assert_allclose(nmse(np.zeros_like(h), h), 1.0, rtol=1e-6)
    np.testing.assert_allclose(nmse(2 * h, h), 1.0, rtol=1e-6)
    np.testing.assert_allclose(nmse(h, h), 0.0, atol=1e-12)
    big = np.ones((2, 64, 4, 64), dtype=np.complex64)
    noise = corrupt(big, 6.0, np.random.default_rng(1)) - big
    # ESNR = ||H||^2 / ||noise||^2 per UE, to the sampling error of 16k complex draws
    np.testing.assert_allclose(np.mean(np.abs(noise) ** 2, axis=(1, 2, 3)), 10 ** -0.6, rtol=0.03)


def test_seed_rows_fold_into_mean_and_sample_sd():
    from ckmsim.eval.csi_study import aggregate_seeds

    row = aggregate_seeds([{"rate": 1.0, "nmse": 0.2, "rho": 0.0}, {"rate": 3.0, "nmse": 0.4, "rho": 0.0}])
    assert row["rate"] == 2.0 and row["rate_sd"] == pytest.approx(np.sqrt(2.0)) and row["num_seeds"] == 2
    assert row["nmse"] == pytest.approx(0.3) and row["nmse_sd"] == pytest.approx(np.sqrt(0.02)) and row["rho"] == 0.0
    assert aggregate_seeds([{"rate": 5.0}])["rate_sd"] == 0.0


class _Oracle:
    """A test double of a CSI predictor: the true downlink CSI on the measured subcarriers, times ``scale``."""

    num_bs_antennas, num_ue_antennas, downlink_pilot_overhead, seconds_per_ue = 4, 1, 0.0, 0.0

    def __init__(self, used, scale):
        self.used, self.scale = used, scale

    def predict_downlink(self, h_ul, h_dl=None):
        return self.scale * h_dl[:, self.used]


def test_an_oracle_predictor_earns_the_perfect_csi_rate(store):
    """The true CSI as a prediction picks the perfect-CSI pairs (rate equal, NMSE 0); twice the true CSI picks
    the same pairs with NMSE exactly 1; a random beam does not beat perfect CSI."""
    from ckmsim.eval.csi_study import CsiStudyConfig, StudyNetwork, study_array
    from ckmsim.models.ladckm.data import LadCkmEncoding

    config = CsiStudyConfig(dataset=str(store.path), arrays=("4x1",), sigmas_m=(0.0,), test_blocks=1, val_blocks=1,
                            num_used=6)
    used = LadCkmEncoding(num_used=6).subcarriers(8)
    networks = [StudyNetwork(_Oracle(used, scale), name, name, 0)
                for scale, name in ((1.0, "oracle"), (2.0, "double"))]
    entry = study_array(store, 4, 1, config, networks, log=lambda m: None)
    rows = entry["rows"]
    assert rows["oracle"]["rate"] == pytest.approx(rows["perfect_csi"]["rate"], rel=1e-6)
    assert rows["oracle"]["nmse"] == pytest.approx(0.0, abs=1e-10) and rows["oracle"]["same_pair_as_perfect"] == 1.0
    assert rows["double"]["rate"] == pytest.approx(rows["perfect_csi"]["rate"], rel=1e-6)
    assert rows["double"]["nmse"] == pytest.approx(1.0, rel=1e-5)
    assert rows["random_beam"]["rate"] <= rows["perfect_csi"]["rate"]
    assert rows["beam_sweep"]["rate"] == pytest.approx((1 - rows["beam_sweep"]["rho"]) * rows["perfect_csi"]["rate"])
    assert rows["location_sigma0m"]["rho"] == 0.0 and entry["num_test_ues"] > 0


def test_one_config_writes_the_study_with_seeds_folded(store, fire_runs, tmp_path):
    from ckmsim.cli import main

    config = _write_config(tmp_path / "study.toml", store, str(fire_runs / "fire-*"))
    assert main(["csi-study", str(config)]) == 0
    out = tmp_path / "out"
    for name in ("results.json", "report.md", "rate_vs_antennas_nr1.png", "rate_vs_position_error_4x1.png",
                 "rate_vs_esnr_4x1.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    entry = results["arrays"][0]
    fire = entry["rows"]["fire_rho0.000"]
    assert fire["num_seeds"] == 2 and sorted(fire["networks"]) == ["fire-4x1-s0", "fire-4x1-s1"]
    seeds = entry["seed_rows"]["fire_rho0.000"]
    assert sorted(r["seed"] for r in seeds) == [0, 1]
    low, high = sorted(r["rate"] for r in seeds)
    assert low <= fire["rate"] <= high and fire["rate_sd"] == pytest.approx((high - low) / np.sqrt(2), abs=1e-9)
    assert entry["rows"]["fire_rho0.000_esnr0dB"]["num_seeds"] == 2
    assert {"location_sigma0m", "location_sigma5m", "uplink", "perfect_csi"} <= set(entry["rows"])
    assert "± " in (out / "report.md").read_text()


def test_one_seed_at_two_arrays_is_two_rows_not_a_repeat(store, fire_runs, tmp_path):
    """Seed 0 trained at N_t = 4 and at N_t = 2 are two arrays of one scheme (the study's sweep over N_t);
    only the same seed at the same array is refused."""
    from ckmsim.eval.csi_study import CsiStudyConfig, load_networks
    from ckmsim.models.ladckm.data import LadCkmEncoding
    from ckmsim.models.ladckm.train import LadCkmTrainConfig, train_ladckm_config
    from ckmsim.train.trainer import TrainSettings

    small = tmp_path / "small-2x1-s0"
    train_ladckm_config(LadCkmTrainConfig(
        dataset=str(store.path), out=str(small), model_kind="fire", num_bs_antennas=2,
        encoding=LadCkmEncoding(num_used=6, subcarrier_step=0), test_blocks=1, val_blocks=1,
        model={"latent_dim": 4, "width": 8}, settings=TrainSettings(epochs=1, learning_rate=1e-3, lr_patience=0, seed=0),
        batch_size=4), log=lambda m: None)
    names = {Path(store.path).name, store.manifest.get("name")}
    both = CsiStudyConfig(dataset=str(store.path), arrays=("4x1", "2x1"), sigmas_m=(), num_used=6,
                          runs=(str(fire_runs / "fire-4x1-s0"), str(small)), test_blocks=1, val_blocks=1)
    networks = load_networks(both, names, log=lambda m: None)
    assert [n.label for n in networks] == ["fire_rho0.000"] * 2 and [n.seed for n in networks] == [0, 0]
    twice = CsiStudyConfig(dataset=str(store.path), arrays=("4x1",), sigmas_m=(), num_used=6, test_blocks=1,
                           val_blocks=1, runs=(str(fire_runs / "fire-4x1-s0"), str(fire_runs / "fire-4x1-s0")))
    with pytest.raises(CkmsimError, match="repeats the training seed 0"):
        load_networks(twice, names, log=lambda m: None)


def test_bad_configs_say_what_is_wrong(store, fire_runs, tmp_path):
    from ckmsim.eval.csi_study import CsiStudyConfig, load_csi_study_config, run_csi_study

    config = _write_config(tmp_path / "a.toml", store, str(fire_runs / "fire-*"))
    config.write_text(config.read_text().replace("[split]", "colour = 1\n[split]"))
    with pytest.raises(CkmsimError, match="unknown key.*colour"):
        load_csi_study_config(config)
    with pytest.raises(CkmsimError, match="N_txN_r"):
        load_csi_study_config(_write_config(tmp_path / "b.toml", store, str(fire_runs / "fire-*"), arrays=["4y1"]))
    with pytest.raises(CkmsimError, match="does not exist"):
        load_csi_study_config(_write_config(tmp_path / "c.toml", store, str(tmp_path / "no-run")))
    # networks trained with 1 test block, studied on 2: their training UEs would be scored
    wrong_split = CsiStudyConfig(dataset=str(store.path), arrays=("4x1",), runs=(str(fire_runs / "fire-4x1-s0"),),
                                 test_blocks=2, val_blocks=0, sigmas_m=(), num_used=6, out=str(tmp_path / "x"))
    with pytest.raises(CkmsimError, match="trained on the split"):
        run_csi_study(wrong_split, log=lambda m: None)
    # a glob pattern leaves out what does not fit the study (named explicitly, it is refused, as above)
    lines = []
    other = _write_config(tmp_path / "d.toml", store, str(fire_runs / "fire-*"))
    other.write_text(other.read_text().replace("test_blocks = 1\nval_blocks = 1", "test_blocks = 2\nval_blocks = 0"))
    assert load_csi_study_config(other, log=lines.append).runs == ()
    assert sum("not the study's; left out" in line for line in lines) == 2
    with pytest.raises(CkmsimError, match="sigmas_m"):
        CsiStudyConfig(dataset="x", sigmas_m=(-1.0,))

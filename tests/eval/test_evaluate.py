"""`ckmsim evaluate` end to end on a tiny study: outputs, sweeps' invariants, deployment, config errors."""

import json

import pytest

from ckmsim.cli import main
from ckmsim.errors import CkmsimError
from ckmsim.eval.evaluate import load_evaluation_config

pytestmark = pytest.mark.raytrace

TINY = """
[evaluate]
name = "tiny"
seed = 3
methods = ["bilinear", "idw", "umi_3gpp"]

[[scenes]]
scene = "simple_street_canyon"
num_cells = 16
cell_size_m = 2.0
center_m = [0.0, 0.0]

[[tasks]]
steps = [{ kind = "subsample", factor = 4 }]

[[tasks]]
steps = [{ kind = "box_mask", size = 4 }, { kind = "noise", std_db = 3.0 }]

[link]
num_bs_ant = 8
num_ue_ant = 2
bs_antennas = [4, 8, 16]
snr_offsets_db = [-20.0, 0.0]
coded_ues = 6
coded_codewords = 8
coded_mode = "graph"

[ray_tracing]
max_depth = 2
radio_map_samples = 100000
path_samples = 10000
receivers_per_call = 64

[deployment]
num_existing = 2
num_candidates = 3
"""


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    config = folder / "tiny.toml"
    config.write_text(TINY)
    out = folder / "out"
    assert main(["evaluate", str(config), "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "results.json").read_text()), out


def test_outputs_and_record_shape(evaluation):
    results, out = evaluation
    (study,) = results["studies"]
    assert study["label"] == "simple_street_canyon"
    pairs = {(r["name"], r["task"]) for r in study["methods"]}
    assert pairs == {(m, "sr_x4") for m in ("bilinear", "idw", "umi_3gpp")} | {
        (m, "box4x4+noise3db") for m in ("idw", "umi_3gpp")}
    # bilinear needs the sub-sampling lattice: it is skipped on the inpainting task, with the reason
    assert [(s["name"], s["task"]) for s in study["skipped"]] == [("bilinear", "box4x4+noise3db")]
    for name in ("report.md", "rate_vs_map_error.png", "rate_vs_snr_simple_street_canyon.png",
                 "rate_vs_antennas_simple_street_canyon.png", "deployment_simple_street_canyon.png",
                 "simple_street_canyon/results.json", "simple_street_canyon/report.md"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "| bilinear | sr_x4 |" in report and "AP deployment" in report
    # The tables' headline is over the test UEs the task did not measure, the margins each map's own
    assert "test UEs the task did not measure" in (out / "simple_street_canyon" / "report.md").read_text()
    assert all(m["margin_db"] >= 0 for m in study["coded_link"]["methods"].values())
    # CSI beamforming with the configured 2-antenna UE for every angle-predicting map, none for the gain-only one
    assert study["link"]["csi_beamforming"]["ue_array"]["num_ant"] == 2
    assert "### CSI beamforming" in report
    for record in study["methods"]:
        assert (record["rate_csi_beamforming"] is None) == (record["name"] == "umi_3gpp")


def test_sweeps_respect_the_physics(evaluation):
    results, _ = evaluation
    sweeps = results["studies"][0]["sweeps"]
    snr = sweeps["snr"]["mean_rate_bps_hz"]
    for label, values in snr.items():
        assert values[1] > values[0], label                 # more power, more rate, same beams
        assert values[1] <= snr["perfect_csi"][1] + 1e-9, label
    antennas = sweeps["bs_antennas"]["mean_rate_bps_hz"]
    perfect = antennas["perfect_csi"]
    assert perfect == sorted(perfect)                        # more antennas never lower the perfect-CSI rate
    for label, values in antennas.items():
        assert all(v <= p + 1e-9 for v, p in zip(values, perfect)), label
    # The study's own array size reproduces the study's beam-selection rate.
    study = results["studies"][0]
    index = sweeps["bs_antennas"]["num_bs_ant"].index(8)
    assert antennas["ground_truth_map"][index] == pytest.approx(study["references"]["ground_truth_map"]["mean_bps_hz"])


def test_deployment_oracle_bounds_every_choice(evaluation):
    results, _ = evaluation
    outcomes = results["studies"][0]["deployment"]["outcomes"]
    oracle = outcomes["oracle"]
    assert oracle["fraction_of_oracle"] == pytest.approx(1.0)
    assert oracle["oracle"] == max(range(3), key=lambda i: oracle["true_values"][i])
    for name in ("bilinear", "idw", "umi_3gpp", "cross_ap_weighted", "random_site"):
        assert 0.0 < outcomes[name]["fraction_of_oracle"] <= 1.0 + 1e-12, name


def test_coded_link_scores_every_map_against_the_genie(evaluation):
    results, _ = evaluation
    coded = results["studies"][0]["coded_link"]
    assert coded["num_ues"] == 6
    assert coded["references"]["genie"]["fraction_of_genie"] == pytest.approx(1.0)
    entries = [coded["references"]["ground_truth_map"], *coded["methods"].values()]
    assert len(coded["methods"]) == 5
    for entry in entries:
        assert 0.0 <= entry["bler_mean"] <= 1.0
        assert 0.0 <= entry["goodput_mean_bps_hz"] <= 5.6  # 64-QAM at the highest code rate


@pytest.mark.parametrize("text, message", [
    (TINY.replace('methods = ["bilinear", "idw", "umi_3gpp"]', 'methods = ["bilinera"]'), "Unknown method"),
    (TINY.replace("[link]", "[link]\nnum_antennas = 4"), "num_antennas"),
    (TINY.replace('kind = "subsample"', 'kind = "subsampel"'), "subsampel"),
    (TINY.replace("[[scenes]]\nscene = \"simple_street_canyon\"", "[[scenes]]"), "lacks 'scene'"),
    (TINY.replace("num_candidates = 3", "num_candidates = 0"), "num_candidates"),
    (TINY.replace('coded_mode = "graph"', 'coded_mode = "fast"'), "coded_mode"),
    (TINY.replace("num_ue_ant = 2", "num_ue_ant = 0"), "num_ue_ant"),
    (TINY.replace("num_ue_ant = 2", "calibration_fraction = 1.5"), "calibration_fraction"),
    (TINY.replace("num_ue_ant = 2", "calibration_block_cells = 0"), "calibration_block_cells"),
    # A pilot overhead is declared by each method, not configured for all of them
    (TINY.replace("num_ue_ant = 2", "csi_pilot_overhead = 0.125"), "csi_pilot_overhead"),
])
def test_bad_configs_name_the_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CkmsimError, match=message):
        load_evaluation_config(path)


def test_one_total_time_for_results_and_report(evaluation):
    """The report states results.json's total, taken after the last figure: it covers every study's own
    total, sweeps and coded link."""
    results, out = evaluation
    total = results["timings_s"]["total"]
    assert f"Total time {total:.1f} s." in (out / "report.md").read_text()
    (study,) = results["studies"]
    timings = study["timings_s"]
    assert total >= timings["total"] + timings["sweeps"] + timings.get("coded_link", 0.0)

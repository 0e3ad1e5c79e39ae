"""The quickstart end to end on a tiny study area: results.json schema, rate bounds, report, figures.

The study behaviours under it (ground-truth cache, pilots paid, config checks) are in test_study.py."""

import json
import math

import pytest

pytestmark = pytest.mark.raytrace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAP_KEYS = ("gain_rmse_db", "aoa_rmse_deg", "nmse", "psnr_db", "ssim")
RATE_KEYS = ("mean_bps_hz", "p5_bps_hz", "fraction_of_perfect_csi")
TASKS = ("sr_x2", "sr_x4")


def _canonical(value) -> str:
    """JSON text of a results fragment: compares NaN equal to NaN, unlike ``==`` on floats."""
    return json.dumps(value, sort_keys=True)


def test_results_json_schema(tiny_quickstart):
    results, out = tiny_quickstart
    on_disk = json.loads((out / "results.json").read_text())
    for key in ("scene", "grid", "link", "references", "methods"):
        assert key in on_disk, key
    assert on_disk["scene"] == "simple_street_canyon"
    assert on_disk["grid"]["num_x"] == on_disk["grid"]["num_y"] == 16
    assert on_disk["link"]["bs_array"]["num_ant"] == 8
    assert set(on_disk["references"]) == {"perfect_csi", "ground_truth_map", "ground_truth_map_adaptation",
                                            "perfect_csi_precoding", "perfect_statistics_precoding",
                                            "ground_truth_map_precoding", "perfect_csi_beamforming", "beam_sweep",
                                            "random_beam", "ground_truth_map_csi_beamforming"}
    for entry in on_disk["references"].values():
        assert set(entry["by_task"]) == set(TASKS)
    assert _canonical(on_disk["methods"]) == _canonical(results["methods"])


def test_one_method_record_per_method_and_task(tiny_quickstart):
    results, _ = tiny_quickstart
    methods = results["config"]["methods"]
    pairs = [(record["name"], record["task"]) for record in results["methods"]]
    skipped = [(entry["name"], entry["task"]) for entry in results["skipped"]]
    # The shipped E-SRResNet solves the x2 task it was trained for, and x4 as a bicubic-then-network cascade;
    # the shipped CKMDiff was trained on both
    assert skipped == []
    assert {("esrresnet", task) for task in TASKS} | {("ckmdiff", task) for task in TASKS} <= set(pairs)
    assert sorted(pairs + skipped) == sorted((name, task) for name in methods for task in TASKS)
    for record in results["methods"]:
        gain_only = record["name"] in ("pathloss_kriging", "umi_3gpp", "ckmdiff")
        for key in MAP_KEYS:
            if gain_only and key == "aoa_rmse_deg":
                assert key not in record["map"]
                continue
            assert isinstance(record["map"][key], float), (record["name"], record["task"], key)
        # Every method gets the link-adaptation score; beam selection needs predicted path angles.
        scored = [record["rate_adaptation"]] + ([record["rate"]] if record["rate"] is not None else [])
        for summary in scored:
            for key in RATE_KEYS:
                assert math.isfinite(summary[key]), (record["name"], record["task"], key)
        assert (record["rate"] is None) == gain_only
        assert (record["rate_precoding"] is None) == gain_only
        assert (record["rate_csi_beamforming"] is None) == gain_only
        assert record["map"]["gain_rmse_db"] >= 0.0
        by_region = record["map_by_region"]
        assert set(by_region) == {"non_building", "los", "nlos", "transition"}
        # LoS and NLoS split the non-building cells, so their squared errors add up to the whole map's.
        cells = {r: by_region[r]["num_cells"] for r in by_region}
        assert cells["los"] + cells["nlos"] == cells["non_building"]
        pooled = sum(cells[r] * by_region[r]["gain_mse_db2"] for r in ("los", "nlos") if cells[r])
        assert pooled / cells["non_building"] == pytest.approx(record["map"]["gain_mse_db2"], rel=1e-9)


def test_quickstart_lists_every_single_transmitter_baseline(tiny_quickstart):
    results, _ = tiny_quickstart
    assert set(results["config"]["methods"]) == {"bilinear", "bicubic", "knn", "idw", "rbf", "kriging", "ls",
                                                 "pathloss_kriging", "umi_3gpp", "esrresnet", "ckmdiff"}


def test_every_score_stays_within_its_own_bound(tiny_quickstart):
    """Precoding is a share of eigen-beamforming with the true channel (not of the DFT bound it may beat)."""
    results, _ = tiny_quickstart
    references = results["references"]
    assert references["perfect_csi"]["fraction_of_perfect_csi"] == pytest.approx(1.0)
    assert references["perfect_csi_precoding"]["fraction_of_perfect_csi"] == pytest.approx(1.0)
    # The unconstrained bound is above the codebook's
    assert references["perfect_csi_precoding"]["mean_bps_hz"] > references["perfect_csi"]["mean_bps_hz"]
    for name in ("ground_truth_map", "ground_truth_map_adaptation", "ground_truth_map_precoding",
                 "perfect_statistics_precoding"):
        assert 0.0 <= references[name]["fraction_of_perfect_csi"] <= 1.0 + 1e-9, name
    for record in results["methods"]:
        for summary in (record["rate"], record["rate_adaptation"], record.get("rate_precoding")):
            if summary is None:
                continue
            for entry in (summary, summary["all_test_ues"]):
                assert 0.0 <= entry["fraction_of_perfect_csi"] <= 1.0 + 1e-9, (record["name"], record["task"])
                # quantiles are ordered (the mean is not: a few UEs at 0 pull it below the 5th percentile)
                assert 0.0 <= entry["p5_bps_hz"] <= entry["median_bps_hz"] + 1e-9


def test_headline_is_over_test_ues_the_task_did_not_measure(tiny_quickstart):
    """Every rate is over the test UEs; the headline leaves out the measured lattice cells (about a quarter
    of the UEs at x2, a sixteenth at x4) and the margins are calibrated on the other UEs."""
    results, _ = tiny_quickstart
    split = results["link"]["ue_split"]
    assert split["num_calibration_ues"] + split["num_test_ues"] == results["link"]["num_ues"]
    assert split["num_calibration_ues"] > 0 and split["num_test_ues"] > 0
    for record in results["methods"]:
        adaptation = record["rate_adaptation"]
        assert adaptation["all_test_ues"]["num_ues"] == split["num_test_ues"]
        unmeasured = adaptation["num_ues"] / split["num_test_ues"]
        expected = {"sr_x2": 0.75, "sr_x4": 15 / 16}[record["task"]]
        assert abs(unmeasured - expected) < 0.15, (record["name"], record["task"], unmeasured)
        assert adaptation["margin_db"] >= 0.0
        assert record["downlink_pilot_overhead"] == 0.0
        for task, entry in results["references"]["perfect_csi"]["by_task"].items():
            if task == record["task"]:
                assert entry["num_ues"] == adaptation["num_ues"]


def test_csi_beamforming_scores_every_angle_method_within_its_references(tiny_quickstart):
    """LAD-CKM eqs. (10)-(11) from each map's predicted CSI: pilots paid, bounded by the map-free references."""
    results, out = tiny_quickstart
    link = results["link"]["csi_beamforming"]
    assert "pilot_overhead" not in link  # each method declares its own
    assert link["num_pairs"] == results["link"]["codebook"]["num_beams"] * link["ue_array"]["num_ant"]
    references = results["references"]
    perfect = references["perfect_csi_beamforming"]["mean_bps_hz"]
    truth_map = references["ground_truth_map_csi_beamforming"]["mean_bps_hz"]
    assert references["perfect_csi_beamforming"]["fraction_of_perfect_csi"] == pytest.approx(1.0)
    assert references["random_beam"]["mean_bps_hz"] <= truth_map <= perfect
    # The sweep finds the perfect-CSI pair and pays its pilots: exactly (1 - rho_sweep) of perfect CSI
    assert references["beam_sweep"]["fraction_of_perfect_csi"] == pytest.approx(1 - link["beam_sweep_overhead"])
    angle_records = [r for r in results["methods"] if r["rate"] is not None]
    assert angle_records
    for record in angle_records:
        summary = record["rate_csi_beamforming"]
        # Every quickstart method reads its map at the UE's position: no downlink pilot
        assert summary["pilot_overhead"] == 0.0
        assert summary["gain_loss_db_mean"] >= -1e-6, (record["name"], record["task"])
        for key in RATE_KEYS:
            assert math.isfinite(summary[key]), (record["name"], record["task"], key)
    assert "### CSI beamforming" in (out / "report.md").read_text()


def test_report_and_figures_are_written(tiny_quickstart):
    results, out = tiny_quickstart
    report = (out / "report.md").read_text()
    assert "simple_street_canyon" in report
    for record in results["methods"]:
        assert f"| {record['name']} | {record['task']} |" in report
    for name in ("maps_sr_x2.png", "maps_sr_x4.png", "rate_cdf_beam_selection.png",
                 "rate_cdf_link_adaptation.png", "rate_cdf_csi_beamforming.png", "rate_cdf_scm_precoding.png",
                 "ue_split.png"):
        path = out / name
        assert path.is_file(), name
        assert path.read_bytes()[:8] == PNG_MAGIC, name
        assert f"![{name}]({name})" in report


def test_every_map_score_says_how_many_cells_it_scored(tiny_quickstart):
    """Cell counts sit beside every map score; least squares' angles cover only its measured cells, and the
    report marks that score."""
    results, out = tiny_quickstart
    report = (out / "report.md").read_text()
    by_name = {(r["name"], r["task"]): r for r in results["methods"]}
    for record in results["methods"]:
        cells = record["map_num_cells"]
        assert set(record["map"]) <= set(cells), (record["name"], set(record["map"]) - set(cells))
        # the region scores count their cells on their own: the non-building region is the gain scores' set
        assert cells["gain_rmse_db"] == record["map_by_region"]["non_building"]["num_cells"]
        if "scm_cosine_mean" in cells:
            assert cells["scm_cosine_mean"] == results["link"]["num_ues"]
        assert 0.0 <= record["map"]["false_floor_fraction"] <= 1.0
    for task in TASKS:
        ls, bicubic = by_name[("ls", task)], by_name[("bicubic", task)]
        assert ls["map_num_cells"]["aoa_rmse_deg"] < bicubic["map_num_cells"]["aoa_rmse_deg"]
        assert f"[^ls-{task}-aoa_rmse_deg]:" in report
        assert ls["map"]["false_floor_fraction"] > 0.5  # zero-filled: the cells it did not measure
    assert "## Where methods lose, and why" in report
    assert "loads the shipped weights `esrresnet-cpu`" in report


def test_report_states_the_perfect_csi_share_of_unserved_ues(tiny_quickstart):
    results, out = tiny_quickstart
    report = (out / "report.md").read_text()
    for task in TASKS:
        shares = results["references"]["perfect_csi"]["by_task"][task]["share_below_bps_hz"]
        assert f"{100 * shares['0.1']:.1f} % under 0.1 bit/s/Hz" in report, task


def test_readme_lists_every_figure_the_quickstart_writes(tiny_quickstart):
    """The README's description of the output folder names exactly the PNG files a run writes."""
    import re
    from pathlib import Path

    _, out = tiny_quickstart
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("`quickstart-out/` then holds"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    assert set(re.findall(r"`([\w.-]+\.png)`", paragraph)) == {path.name for path in out.glob("*.png")}

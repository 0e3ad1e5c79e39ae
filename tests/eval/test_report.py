"""report.md says where a method loses and why, from the records alone: a hand-made record set with known
cell counts, shares and scores, and the sentences the report must draw from it."""

import re

import pytest

from ckmsim.eval.report import edge_rate_note, findings, map_table, time_text

TASK = "sr_x2"
#: Cells of the hand-made study: 2457 non-building cells, 4100 path-cells with a true angle, 2414 UEs
CELLS = {"gain_mse_db2": 2457, "gain_rmse_db": 2457, "pixel_mse": 2457, "pixel_rmse": 2457, "nmse": 2457,
         "psnr_db": 2457, "ssim": 2103, "path_gain_rmse_db": 4300, "aoa_rmse_deg": 4100, "covered_gain_rmse_db": 2190,
         "false_floor_fraction": 2457, "scm_cosine_mean": 2414}


def _rate(share: float, margin_db: float | None = None) -> dict:
    summary = {"mean_bps_hz": 8 * share, "p5_bps_hz": 0.0, "median_bps_hz": 9 * share,
               "fraction_of_perfect_csi": share, "num_ues": 1384}
    if margin_db is not None:
        summary.update(margin_db=margin_db, outage_fraction=0.1)
    return summary


def _record(name, gain, path_gain, aoa, scm, beam, adaptation, margin_db=6.0, floor=0.0, cells=None, **extra):
    angles = aoa is not None
    scores = {"gain_mse_db2": gain ** 2, "gain_rmse_db": gain, "covered_gain_rmse_db": gain - 1, "nmse": 0.003,
              "psnr_db": 28.0, "ssim": 0.97, "false_floor_fraction": floor}
    num_cells = dict(CELLS, **(cells or {}))
    if angles:
        scores.update(path_gain_rmse_db=path_gain, aoa_rmse_deg=aoa, scm_cosine_mean=scm)
    else:
        for key in ("path_gain_rmse_db", "aoa_rmse_deg", "scm_cosine_mean"):
            num_cells.pop(key)
    return {"name": name, "task": TASK, "map": scores, "map_num_cells": num_cells,
            "rate": _rate(beam) if angles else None, "rate_precoding": None,
            "rate_adaptation": _rate(adaptation, margin_db), "rate_csi_beamforming": _rate(beam) if angles else None,
            **extra}


WEIGHTS = {"name": "esrresnet-cpu", "description": "E-SRResNet, tiny CPU configuration",
           "predicts": "path_gain_db and aoa_az_deg of the two strongest paths"}


@pytest.fixture
def results():
    records = [
        _record("bicubic", 7.907, 5.1, 16.9, 0.884, 0.946, 0.800, margin_db=7.3),
        _record("bilinear", 7.32, 4.99, 16.3, 0.922, 0.967, 0.820),
        # equal gain, worse path gain, better AoA, worse beam-selection share than bicubic
        _record("esrresnet", 7.907, 5.5, 16.7, 0.884, 0.940, 0.800, margin_db=7.3, weights=WEIGHTS),
        # zero-filled: three quarters at the floor, angles only on the 1000 path-cells it measured
        _record("ls", 122.29, 118.2, 0.0, 0.248, 0.279, 0.0, margin_db=0.0, floor=0.75,
                cells={"aoa_rmse_deg": 1000}),
        # gain-only, and a link adaptation that needs a 45 dB back-off
        _record("umi_3gpp", 28.81, None, None, None, None, 0.011, margin_db=45.1),
    ]
    truth_adaptation = dict(_rate(0.846, 5.5))
    perfect = {**_rate(1.0), "p5_bps_hz": 0.012, "share_below_bps_hz": {"0.1": 0.098, "0.5": 0.167}}
    return {"methods": records,
            "references": {"perfect_csi": {**perfect, "by_task": {TASK: perfect}},
                           "ground_truth_map_adaptation": {**truth_adaptation, "by_task": {TASK: truth_adaptation}}}}


def _row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {name} | {TASK} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def _footnote(table: str, tag: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"[^{tag}]:"))


def test_every_other_cell_set_is_marked_with_its_count(results):
    table = map_table(results)
    header = table.splitlines()[0]
    # the gain scores' own set carries no mark; the others name their set and count in a footnote
    assert "gain RMSE [dB] |" in header and "gain RMSE [dB] [^" not in header.split("|")[3]
    for key, count in (("aoa_rmse_deg", "4100 path-cells"), ("ssim", "2103 cells"), ("covered_gain_rmse_db", "2190 cells"),
                       ("scm_cosine_mean", "2414 UEs"), ("path_gain_rmse_db", "4300 path-cells")):
        assert f"[^{key}]" in header, key
        assert f"{count} on {TASK}" in _footnote(table, key), key
    assert f"over the non-building cells (2457 cells on {TASK})" in table


def test_a_score_over_fewer_cells_than_the_others_is_marked(results):
    table = map_table(results)
    columns = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    aoa = next(i for i, c in enumerate(columns) if c.startswith("AoA RMSE"))
    assert _row(table, "ls")[aoa] == "0.0 [^ls-sr_x2-aoa_rmse_deg]"
    note = _footnote(table, "ls-sr_x2-aoa_rmse_deg")
    assert "1000 of the 4100" in note and "where its prediction has an angle" in note
    for name in ("bicubic", "bilinear", "esrresnet"):
        assert "[^" not in _row(table, name)[aoa], name
    # only LS's AoA deviates: one row mark in the whole table
    assert len(re.findall(r"\[\^[^\]]*-sr_x2-", table.split("\n\n")[0])) == 1


def test_learned_method_is_flagged_where_bicubic_beats_it(results):
    text = findings(results)
    line = next(line for line in text.splitlines() if line.startswith(f"  - {TASK}"))
    assert "**worse than bicubic** on path-gain RMSE 5.50 dB vs 5.10 dB; beam selection 94.0 % vs 94.6 %" in line
    assert "equal to bicubic on gain RMSE 7.91 dB" in line
    assert "better on AoA RMSE 16.7 deg vs 16.9 deg" in line
    assert "Lowest gain RMSE on sr_x2: bilinear (7.32 dB)" in line
    assert "`esrresnet-cpu`: E-SRResNet, tiny CPU configuration" in text
    assert "predict path_gain_db and aoa_az_deg" in text
    # classical methods are never compared with bicubic
    assert "**bilinear**" not in text


def test_floor_cells_and_narrow_cell_sets_are_explained(results):
    text = findings(results)
    assert "**ls** on sr_x2 leaves 75.0 % of the non-building cells at the -250 dB floor" in text
    assert "gain RMSE of 122.29 dB" in text
    assert "its AoA RMSE of 0.0 deg is over 1000 of the 4100 path-cells" in text


def test_collapsed_link_adaptation_names_its_margin(results):
    text = findings(results)
    assert ("**umi_3gpp** on sr_x2: link adaptation keeps 1.1 % of the bound (ground-truth map: 84.6 %)" in text)
    assert "back-off of 45.1 dB (ground-truth map: 5.5 dB)" in text
    # LS's collapse is told by its floor cells, not twice
    assert "**ls** on sr_x2: link adaptation" not in text
    assert "umi_3gpp predicts no path angles" in text and "from its gain map." in text


def test_edge_rate_note_is_computed_from_the_perfect_csi_record(results):
    note = edge_rate_note(results)
    assert "9.8 % under 0.1 bit/s/Hz, 16.7 % under 0.5 bit/s/Hz" in note
    assert "5 % rate 0.012 bit/s/Hz" in note
    results["references"]["perfect_csi"]["by_task"][TASK]["share_below_bps_hz"] = {"0.1": 0.25, "0.5": 0.5}
    assert "25.0 % under 0.1 bit/s/Hz, 50.0 % under 0.5" in edge_rate_note(results)


def test_edge_rate_note_needs_the_shares():
    results = {"methods": [], "references": {"perfect_csi": {"p5_bps_hz": 0.0, "by_task": {}}}}
    assert edge_rate_note(results) == ""


def test_records_without_cell_counts_still_render(results):
    for record in results["methods"]:
        del record["map_num_cells"]
    table = map_table(results)
    assert "[^" not in table
    assert _row(table, "ls")[0] == "ls"


def test_time_is_the_results_total():
    timings = {"ground_truth": 15.48, "ground_truth_from_cache": False, "link_setup": 16.4,
               "methods_and_scores": 26.84, "outputs": 6.3, "total": 66.95}
    text = time_text(timings)
    assert "total 67.0 s" in text and "figures and files 6.3 s" in text
    assert "(from cache)" in time_text({**timings, "ground_truth_from_cache": True})


def test_edge_rate_note_claims_near_zero_only_when_it_is(results):
    perfect = results["references"]["perfect_csi"]["by_task"][TASK]
    perfect.update(p5_bps_hz=1.5, share_below_bps_hz={"0.1": 0.0, "0.5": 0.01})
    note = edge_rate_note(results)
    assert "near 0" not in note and "1.0 % under 0.5 bit/s/Hz" in note


def test_a_tie_in_cell_counts_marks_the_smaller_set(results):
    """Two methods, one scored on every path-cell and one on a quarter: the quarter is the odd one."""
    results["methods"] = [r for r in results["methods"] if r["name"] in ("bicubic", "ls")]
    table = map_table(results)
    assert "[^ls-sr_x2-aoa_rmse_deg]" in table and "[^bicubic-sr_x2-aoa_rmse_deg]" not in table


def test_no_footnote_for_a_column_no_method_has(results):
    results["methods"] = [r for r in results["methods"] if r["name"] == "umi_3gpp"]
    table = map_table(results)
    assert "[^aoa_rmse_deg]" not in table and "[^scm_cosine_mean]" not in table
    assert "[^ssim]" in table

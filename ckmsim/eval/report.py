"""The markdown report of a run, written beside ``results.json``."""

from __future__ import annotations

from pathlib import Path


def _fmt(value, digits=3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _pct(summary: dict | None, key: str = "fraction_of_perfect_csi") -> str:
    return "n/a" if summary is None else _fmt(100 * summary[key], 1)


def _share(summary: dict | None) -> str:
    """Headline share of the bound [%], the all-test-UE share in brackets."""
    if summary is None:
        return "n/a"
    all_test = summary.get("all_test_ues")
    return _pct(summary) + ("" if all_test is None else f" ({_pct(all_test)})")


def _rate_cells(summary: dict | None) -> str:
    """Mean rate, 5 % rate and share of the bound (all-test-UE share in brackets)."""
    if summary is None:
        return "n/a | n/a | n/a"
    return f"{_fmt(summary['mean_bps_hz'])} | {_fmt(summary['p5_bps_hz'])} | {_share(summary)}"


def _adaptation_cells(summary: dict | None) -> str:
    if summary is None:
        return "- | - | -"
    outage = _pct(summary, "outage_fraction")
    all_test = summary.get("all_test_ues")
    if all_test is not None:
        outage += f" ({_pct(all_test, 'outage_fraction')})"
    return f"{_share(summary)} | {outage} | {_fmt(summary.get('margin_db'), 1)}"


def _tasks(results: dict) -> list[str]:
    """Tasks in the order of the records (then those only skipped)."""
    names = [r["task"] for r in results["methods"]] + [s["task"] for s in results.get("skipped", [])]
    return list(dict.fromkeys(names))


def _reference(results: dict, name: str, task: str) -> dict | None:
    """A reference's summary over ``task``'s headline UEs (None if the results lack it)."""
    entry = results["references"].get(name)
    if entry is None:
        return None
    return entry.get("by_task", {}).get(task, entry)


#: Columns of the map table: (key of a record's ``map``, header, digits, the cells it averages over when that
#: is not the gain scores' set; None: the gain scores' non-building cells).
MAP_COLUMNS = (
    ("gain_rmse_db", "gain RMSE [dB]", 2, None),
    ("covered_gain_rmse_db", "covered gain RMSE [dB]", 2,
     "the non-building cells that receive energy (truth above the -250 dB floor)"),
    ("path_gain_rmse_db", "path gain RMSE [dB]", 2,
     "path-cells (a cell counted once per mapped path) where the true path exists"),
    ("aoa_rmse_deg", "AoA RMSE [deg]", 1,
     "path-cells where both the true and the predicted arrival direction exist"),
    ("nmse", "NMSE", 4, None),
    ("psnr_db", "PSNR [dB]", 2, None),
    ("ssim", "SSIM", 3, "the non-building cells a full SSIM window away from the map edge"),
    ("scm_cosine_mean", "SCM cos", 3, "the UEs (non-building cells with a ray-traced path)"),
    ("false_floor_fraction", "at floor [%]", 1, None),
)
#: Map scores of the angle layers: a method that predicts an angle on fewer cells is scored on fewer of them.
ANGLE_KEYS = ("aoa_rmse_deg", "aoa_az_rmse_deg", "aoa_el_rmse_deg")


def _usual_cells(results: dict) -> dict:
    """``(task, map key) -> number of cells`` most methods of the task were scored on (records of older
    runs without ``map_num_cells`` give none)."""
    counts = {}
    for record in results["methods"]:
        for key, num in record.get("map_num_cells", {}).items():
            counts.setdefault((record["task"], key), []).append(num)
    # a tie goes to the larger set: the one a method predicting every cell is scored on
    return {key: max(set(values), key=lambda v: (values.count(v), v)) for key, values in counts.items()}


def _odd_cells(results: dict) -> list[tuple[dict, str, int, int]]:
    """``(record, map key, its cells, the task's usual cells)`` for every map-table score of a record that
    was averaged over a different number of cells than the other methods' on the same task."""
    usual = _usual_cells(results)
    odd = []
    for record in results["methods"]:
        cells = record.get("map_num_cells", {})
        for key, *_ in MAP_COLUMNS:
            if key in cells and key in record["map"] and cells[key] != usual[(record["task"], key)]:
                odd.append((record, key, cells[key], usual[(record["task"], key)]))
    return odd


def _odd_reason(key: str) -> str:
    if key in ANGLE_KEYS:
        return "only those where its prediction has an angle"
    return "a different set from the other methods'"


def map_table(results: dict) -> str:
    """Markdown table of the map scores of every (method, task), then the cells each score averaged over.

    A column over another cell set than the gain scores is marked in its header, a score of one method over
    another number of cells than the other methods' of its task in its cell; footnotes say which set."""
    usual = _usual_cells(results)
    tasks = _tasks(results)
    # footnote labels are unique within one report of many studies
    prefix = f"{results['label']}-" if "label" in results else ""
    odd = {(id(record), key): (num, usual_num) for record, key, num, usual_num in _odd_cells(results)}

    def counts(key: str) -> str:
        unit = "path-cells" if key.startswith(("path_", "aoa_")) else "UEs" if key == "scm_cosine_mean" else "cells"
        return ", ".join(f"{usual[(task, key)]} {unit} on {task}" for task in tasks if (task, key) in usual)

    header, notes = [], []
    if usual:
        notes.append(f"Cells scored: gain RMSE, NMSE, PSNR and at floor over the non-building cells "
                     f"({counts('gain_rmse_db')}); each marked column over another set (its footnote).\n")
    labels = {key: label for key, label, *_ in MAP_COLUMNS}
    for key, label, _, cell_set in MAP_COLUMNS:
        if cell_set is not None and any((task, key) in usual for task in tasks):
            notes.append(f"[^{prefix}{key}]: {label} averages over {cell_set}: {counts(key)}.")
            label += f" [^{prefix}{key}]"
        header.append(label)
    rows = ["| method | task | " + " | ".join(header) + " |", "|" + "---|" * (2 + len(MAP_COLUMNS))]
    for record in results["methods"]:
        cells = []
        for key, _, digits, _ in MAP_COLUMNS:
            value = record["map"].get(key)
            if key == "false_floor_fraction" and value is not None:
                value = 100 * value
            text = _fmt(value, digits)
            if (id(record), key) in odd:
                num, usual_num = odd[(id(record), key)]
                tag = f"{prefix}{record['name']}-{record['task']}-{key}"
                text += f" [^{tag}]"
                notes.append(f"[^{tag}]: {record['name']} on {record['task']}: {labels[key]} averages over {num} of the "
                             f"{usual_num} path-cells the other methods are scored on ({_odd_reason(key)}), so it "
                             f"is not comparable with theirs." if key in ANGLE_KEYS else
                             f"[^{tag}]: {record['name']} on {record['task']}: {labels[key]} averages over {num} cells, the "
                             f"other methods over {usual_num} ({_odd_reason(key)}).")
            cells.append(text)
        rows.append(f"| {record['name']} | {record['task']} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + ("\n\n" + "\n".join(notes) if notes else "")


#: Scores a learned method is compared on with bicubic, the interpolation its networks start from:
#: (where: "map" key or rate-record name, key, label, unit, True when higher is better).
COMPARED_SCORES = (
    ("map", "gain_rmse_db", "gain RMSE", " dB", False),
    ("map", "path_gain_rmse_db", "path-gain RMSE", " dB", False),
    ("map", "aoa_rmse_deg", "AoA RMSE", " deg", False),
    ("map", "scm_cosine_mean", "SCM cosine", "", True),
    ("rate", "fraction_of_perfect_csi", "beam selection", " %", True),
    ("rate_adaptation", "fraction_of_perfect_csi", "link adaptation", " %", True),
    ("rate_csi_beamforming", "fraction_of_perfect_csi", "CSI beamforming", " %", True),
)
#: The classical method every learned one is measured against.
REFERENCE_METHOD = "bicubic"
#: A map with more of its non-building cells at the floor where the truth has signal is called out.
FLOOR_NOTE_FRACTION = 0.05


def _score(record: dict, where: str, key: str) -> float | None:
    entry = record["map"] if where == "map" else record.get(where)
    value = None if entry is None else entry.get(key)
    if value is None or value != value:
        return None
    return 100 * value if where != "map" else value


def _comparison(record: dict, reference: dict) -> dict[str, list[str]]:
    """The scores of ``record`` worse than, equal to and better than ``reference``'s, as phrases."""
    verdicts = {"worse": [], "equal": [], "better": []}
    for where, key, label, unit, higher in COMPARED_SCORES:
        mine, theirs = _score(record, where, key), _score(reference, where, key)
        if mine is None or theirs is None:
            continue
        digits = 3 if where == "map" and unit == "" else (1 if unit in (" %", " deg") else 2)
        # equal to the digits the report shows: a difference it cannot show is no verdict
        if _fmt(mine, digits) == _fmt(theirs, digits):
            verdicts["equal"].append(f"{label} {_fmt(mine, digits)}{unit}")
            continue
        worse = mine < theirs if higher else mine > theirs
        verdicts["worse" if worse else "better"].append(
            f"{label} {_fmt(mine, digits)}{unit} vs {_fmt(theirs, digits)}{unit}")
    return verdicts


def _best(results: dict, task: str, where: str, key: str, higher: bool) -> tuple[str, float] | None:
    scored = [(r["name"], _score(r, where, key)) for r in results["methods"] if r["task"] == task]
    scored = [(name, value) for name, value in scored if value is not None]
    if not scored:
        return None
    return (max if higher else min)(scored, key=lambda item: item[1])


def _learned_findings(results: dict) -> list[str]:
    """One bullet per learned method (a record with ``weights``): what its weights are, and per task where
    it loses to bicubic (and ties with it)."""
    lines, seen = [], set()
    learned = [r for r in results["methods"] if r.get("weights") is not None]
    # grouped by method, each method's tasks under it
    order = {name: index for index, name in enumerate(dict.fromkeys(r["name"] for r in learned))}
    for record in sorted(learned, key=lambda r: order[r["name"]]):
        weights = record["weights"]
        if record["name"] not in seen:
            seen.add(record["name"])
            lines.append(f"- **{record['name']}** loads the shipped weights `{weights['name']}`: "
                         f"{weights['description']}. Its networks predict {weights['predicts']}.")
        reference = next((r for r in results["methods"]
                          if r["name"] == REFERENCE_METHOD and r["task"] == record["task"]), None)
        if reference is None:
            continue
        verdicts = _comparison(record, reference)
        parts = []
        if verdicts["worse"]:
            parts.append(f"**worse than {REFERENCE_METHOD}** on " + "; ".join(verdicts["worse"]))
        if verdicts["equal"]:
            parts.append(f"equal to {REFERENCE_METHOD} on " + "; ".join(verdicts["equal"]))
        if verdicts["better"]:
            parts.append("better on " + "; ".join(verdicts["better"]))
        best = _best(results, record["task"], "map", "gain_rmse_db", False)
        best_text = "" if best is None or best[0] == record["name"] else \
            f" Lowest gain RMSE on {record['task']}: {best[0]} ({_fmt(best[1], 2)} dB)."
        lines.append(f"  - {record['task']}: " + ("; ".join(parts) or "no comparable score") + "." + best_text)
    return lines


def _floor_findings(results: dict) -> list[str]:
    """Maps left at the gain floor where the truth has signal, and what it does to their scores."""
    lines = []
    for record in results["methods"]:
        fraction = record["map"].get("false_floor_fraction")
        if fraction is None or fraction < FLOOR_NOTE_FRACTION:
            continue
        adaptation = record.get("rate_adaptation") or {}
        lines.append(f"- **{record['name']}** on {record['task']} leaves {_fmt(100 * fraction, 1)} % of the "
                     f"non-building cells at the -250 dB floor (no path) where the truth receives signal: each "
                     f"errs by the gap between its true gain and -250 dB, hence its gain RMSE of {_fmt(record['map']['gain_rmse_db'], 2)} dB, and "
                     f"its link adaptation, which reads no signal there, keeps "
                     f"{_pct(adaptation) if adaptation else 'n/a'} % of the bound.")
    return lines


def _cell_findings(results: dict) -> list[str]:
    """Scores averaged over fewer cells than the other methods' (see the map table's footnotes)."""
    # "AoA RMSE [deg]" -> ("AoA RMSE", "deg")
    labels = {key: (label.partition(" [")[0], label.partition(" [")[2].rstrip("]")) for key, label, *_ in MAP_COLUMNS}
    return [f"- **{record['name']}** on {record['task']}: its {labels[key][0]} of {_fmt(record['map'][key], 1)} "
            f"{labels[key][1]} is over "
            f"{num} of the {usual} path-cells the others are scored on ({_odd_reason(key)}): not a win."
            for record, key, num, usual in _odd_cells(results) if key in ANGLE_KEYS]


def _adaptation_findings(results: dict) -> list[str]:
    """Maps whose link adaptation keeps under half of the ground-truth map's share, and their margin."""
    lines = []
    for record in results["methods"]:
        summary = record.get("rate_adaptation")
        truth = _reference(results, "ground_truth_map_adaptation", record["task"])
        if summary is None or truth is None or record["map"].get("false_floor_fraction", 0) >= FLOOR_NOTE_FRACTION:
            continue
        if summary["fraction_of_perfect_csi"] < 0.5 * truth["fraction_of_perfect_csi"]:
            lines.append(f"- **{record['name']}** on {record['task']}: link adaptation keeps {_pct(summary)} % of "
                         f"the bound (ground-truth map: {_pct(truth)} %): to hold its outage at the target it "
                         f"needs a back-off of {_fmt(summary.get('margin_db'), 1)} dB (ground-truth map: "
                         f"{_fmt(truth.get('margin_db'), 1)} dB), as its gain errs by "
                         f"{_fmt(record['map']['gain_rmse_db'], 2)} dB RMSE.")
    return lines


def _gain_only_findings(results: dict) -> list[str]:
    names = list(dict.fromkeys(r["name"] for r in results["methods"] if r.get("rate") is None))
    if not names:
        return []
    verb, their = ("predicts", "its gain map") if len(names) == 1 else ("predict", "their gain maps")
    return [f"- {', '.join(names)} {verb} no path angles: no beam-selection, precoding or CSI-beamforming "
            f"score, only link adaptation from {their}."]


def findings(results: dict) -> str:
    """Where methods lose, and why, read off the records: learned methods against bicubic, maps left at the
    floor, scores over fewer cells than the others', collapsed link adaptation, gain-only methods."""
    lines = (_learned_findings(results) + _floor_findings(results) + _cell_findings(results)
             + _adaptation_findings(results) + _gain_only_findings(results))
    return "\n".join(lines) if lines else "- Nothing to flag."


def edge_rate_note(results: dict) -> str:
    """Why the 5 % rate is near 0 for every method (when it is): the share of each task's headline UEs that
    perfect CSI itself leaves under each :data:`~ckmsim.metrics.rate_metrics.NEAR_ZERO_BPS_HZ` rate."""
    parts, near_zero = [], False
    for task in _tasks(results):
        perfect = _reference(results, "perfect_csi", task)
        shares = (perfect or {}).get("share_below_bps_hz")
        if not shares:
            continue
        below = ", ".join(f"{_fmt(100 * share, 1)} % under {threshold} bit/s/Hz" for threshold, share in shares.items())
        parts.append(f"{task}: {below} (5 % rate {_fmt(perfect['p5_bps_hz'])} bit/s/Hz)")
        near_zero |= perfect["p5_bps_hz"] < min(float(t) for t in shares)
    if not parts:
        return ""
    if not near_zero:
        return "With perfect CSI (best DFT beam on the true channel), of the headline UEs " + "; ".join(parts) + ".\n"
    return ("The 5 % rate is near 0 even with perfect CSI: the best beam on the true channel leaves many headline "
            "UEs (near) unserved, those whose channel is too weak for any beam: " + "; ".join(parts) +
            ". The 5 % column therefore measures the scene, not the map; compare methods by their mean and their "
            "share.\n")


#: Reference rows of the rate table: (label, beam-selection key, precoding key, adaptation key); adaptation
#: ``"bound"``: the row is the bound itself (100 %, no outage).
RATE_REFERENCES = (("perfect CSI (own bounds)", "perfect_csi", "perfect_csi_precoding", "bound"),
                   ("perfect statistics (wideband eigenvector)", None, "perfect_statistics_precoding", None),
                   ("ground-truth map", "ground_truth_map", "ground_truth_map_precoding", "ground_truth_map_adaptation"))


def rate_table(results: dict) -> str:
    """Markdown table of the rates, grouped by task: the references over the task's headline UEs, then one
    row per (method, task). Headline: test UEs the task did not measure; in brackets all test UEs."""
    rows = ["| method | task | UEs | rho | beam sel. mean [bit/s/Hz] | 5% | % of DFT bound | "
            "SCM precoding mean [bit/s/Hz] | % of eigen bound | link adapt. % of DFT bound | outage % | "
            "margin [dB] |", "|" + "---|" * 12]
    for task in _tasks(results):
        for label, beam, precoding, adaptation in RATE_REFERENCES:
            beam_summary = None if beam is None else _reference(results, beam, task)
            precoding_summary = _reference(results, precoding, task)
            adaptation_summary = None if adaptation in (None, "bound") else _reference(results, adaptation, task)
            num = (beam_summary or precoding_summary or {}).get("num_ues", "-")
            if precoding_summary is None and beam_summary is None:
                continue
            precoding_cells = ("n/a | n/a" if precoding_summary is None else
                               f"{_fmt(precoding_summary['mean_bps_hz'])} | {_pct(precoding_summary)}")
            rows.append(f"| *{label}* | {task} | {num} | 0 | {_rate_cells(beam_summary)} | {precoding_cells} | "
                        f"{'100.0 | 0.0 | -' if adaptation == 'bound' else _adaptation_cells(adaptation_summary)} |")
        for record in (r for r in results["methods"] if r["task"] == task):
            precoding = record.get("rate_precoding")
            headline = record["rate"] or record["rate_adaptation"]
            precoding_cells = "n/a | n/a" if precoding is None else f"{_fmt(precoding['mean_bps_hz'])} | {_share(precoding)}"
            rows.append(f"| {record['name']} | {task} | {headline.get('num_ues', '-')} | "
                        f"{_fmt(record.get('downlink_pilot_overhead'), 3)} | {_rate_cells(record['rate'])} | "
                        f"{precoding_cells} | {_adaptation_cells(record.get('rate_adaptation'))} |")
    return "\n".join(rows)


def results_table(results: dict) -> str:
    """The map table and the rate table of a study, one after the other."""
    return map_table(results) + "\n\n" + rate_table(results)


#: References of the CSI-beamforming table, in order: (key of ``results["references"]``, label).
CSI_REFERENCES = (("perfect_csi_beamforming", "perfect CSI (best DFT pair)"), ("beam_sweep", "beam sweep (no map)"),
                  ("random_beam", "random beam (no map)"), ("ground_truth_map_csi_beamforming", "ground-truth map"))


def csi_beamforming_table(results: dict) -> str:
    """Markdown table of CSI beamforming (LAD-CKM eqs. (10)-(11)) grouped by task: the references over the
    task's headline UEs, then one row per (method, task) whose map predicts CSI; shares of the perfect-CSI
    pair's rate, each rate paying its scheme's pilot overhead rho."""
    sweep_rho = results["link"].get("csi_beamforming", {}).get("beam_sweep_overhead")
    rows = ["| method | task | rho | mean rate [bit/s/Hz] | 5% rate | % of perfect CSI | mean gain loss [dB] |",
            "|" + "---|" * 7]
    for task in _tasks(results):
        for key, label in CSI_REFERENCES:
            summary = _reference(results, key, task)
            if summary is not None:
                rho = _fmt(sweep_rho, 3) if key == "beam_sweep" else "0"
                rows.append(f"| *{label}* | {task} | {rho} | {_rate_cells(summary)} | - |")
        for record in (r for r in results["methods"] if r["task"] == task):
            summary = record.get("rate_csi_beamforming")
            loss = "n/a" if summary is None else _fmt(summary.get("gain_loss_db_mean"), 2)
            rho = "n/a" if summary is None else _fmt(summary.get("pilot_overhead"), 3)
            rows.append(f"| {record['name']} | {task} | {rho} | {_rate_cells(summary)} | {loss} |")
    return "\n".join(rows)


def _csi_setting(link: dict) -> str:
    """The report's setting line of CSI beamforming (empty for results without it)."""
    csi = link.get("csi_beamforming")
    if csi is None:
        return ""
    return (f"- CSI beamforming (LAD-CKM eqs. (10)-(11)): {csi['ue_array']['num_ant']}-element UE ULA, DFT codebooks "
            f"at both ends ({csi['num_pairs']} pairs). Each map's per-path layers give a predicted MIMO-OFDM CSI "
            f"({csi['map_csi']}). Rate: {csi['rate']}; rho = 0 for perfect CSI and the random beam, "
            f"{csi['beam_sweep_overhead']:.3f} for the exhaustive beam sweep.\n")


def _split_setting(link: dict, config: dict) -> str:
    """The report's setting lines of the calibration / test split and the headline UEs."""
    split = link.get("ue_split")
    if split is None:
        return ""
    return (f"- Fair scores: the {link['num_ues']} UEs are split by seeded spatial blocks of "
            f"{split['block_cells']} x {split['block_cells']} cells into {split['num_calibration_ues']} calibration UEs "
            f"({split['num_calibration_blocks']} blocks) and {split['num_test_ues']} test UEs "
            f"({split['num_test_blocks']} blocks); every rate is over test UEs. Each map's link-adaptation margin is "
            f"its own, calibrated for {100 * config.get('target_outage', 0.1):.0f} % outage on its predictions at the "
            f"calibration UEs its task did not measure. **Headline: test UEs the task did not measure** (a method "
            f"holds the true value of the measured lattice cells); in brackets the share over all test UEs. "
            f"Each score is a share of its own bound (DFT beam, eigen-beamforming, DFT pair). rho is the downlink "
            f"pilot overhead each method declares and its rates pay (0 for a map read at the UE's position).\n")


def region_table(results: dict) -> str:
    """Markdown table of the gain RMSE [dB] of every (method, task) per region of the truth."""
    regions = ("non_building", "los", "nlos", "transition")
    rows = ["| method | task | " + " | ".join(f"{r.replace('_', '-')} (cells)" for r in regions) + " |",
            "|" + "---|" * (2 + len(regions))]
    for record in results["methods"]:
        by_region = record.get("map_by_region", {})
        cells = [f"{_fmt(by_region[r]['gain_rmse_db'], 2)} ({int(by_region[r]['num_cells'])})" if r in by_region
                 else "n/a" for r in regions]
        rows.append(f"| {record['name']} | {record['task']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _path_solver_text(rt: dict) -> str:
    """How the per-cell paths were traced, from the ray-tracing settings' dict."""
    rays = f"{rt['path_samples']:.0e} rays"
    if rt.get("path_solver", "standard") == "pooled":
        return (f"PathSolver with candidate pooling ({rays} per probe call, a probe every {rt['pool_stride']} "
                f"cells, chains re-validated within {rt['pool_radius']} cells, {rt['pool_seeds']} seeds)")
    return f"PathSolver {rays} per batch of {rt['receivers_per_call']} UEs"


def time_text(timings: dict) -> str:
    """The report's time line: the stages and the total of ``results.json``'s ``timings_s``, the same numbers."""
    stages = [("ground truth", "ground_truth"), ("link set-up", "link_setup"),
              ("methods and scores", "methods_and_scores"), ("figures and files", "outputs")]
    parts = [f"{label} {timings[key]:.1f} s" + (" (from cache)" if key == "ground_truth" and
                                                 timings.get("ground_truth_from_cache") else "")
             for label, key in stages if key in timings]
    return (", ".join(parts) + f"; total {timings.get('total', float('nan')):.1f} s. The total is results.json's "
            "`timings_s.total`, from loading the scene to the last figure; Python's start-up and imports come "
            "before it.")


def write_report(out: Path, results: dict, title: str = "ckmsim quickstart") -> Path:
    """Write ``report.md`` summarising settings, the results table and the figures."""
    grid, rt, link = results["grid"], results["ray_tracing"], results["link"]
    budget = link["budget"]
    timings = results["timings_s"]
    figures = sorted(p.name for p in Path(out).glob("*.png"))
    text = f"""# {title} — {results['scene']}

## Where methods lose, and why
Read off the scores below (settings, then the tables).

{findings(results)}

## Setting
- Grid: {grid['num_y']} x {grid['num_x']} cells of {grid['cell_size_m']:g} m centred on
  ({grid['center_x_m']:.1f}, {grid['center_y_m']:.1f}) m, UEs {grid['height_m']} m above the local ground.
- BS at ({', '.join(f'{v:.1f}' for v in results['bs_position_m'])}) m, {link['bs_array']['num_ant']}-element
  half-wavelength ULA, DFT codebook of {link['codebook']['num_beams']} beams.
- Ray tracing (Sionna RT): {rt['frequency_hz'] / 1e9:.1f} GHz, max depth {rt['max_depth']}, diffraction
  {rt['diffraction']}, edge diffraction {rt['edge_diffraction']}; {_path_solver_text(rt)}; the gain map is
  the power sum of each cell's (deduplicated) paths; seed {rt['seed']}.
- Link budget: {budget['tx_power_dbm']} dBm over {budget['bandwidth_hz'] / 1e6:.0f} MHz
  ({budget['num_subcarriers']} subcarriers evaluated), noise figure {budget['noise_figure_db']} dB,
  noise power {budget['noise_power_dbm']:.1f} dBm. {link['num_ues']} UEs (non-building cells with a path).
- Beam-selection rate: {link['rate']}. Each map selects the beam from its predicted spatial correlation
  matrix (E-SRResNet eq. (6), strongest {results['config']['num_map_paths']} paths); perfect CSI selects it
  on the true channel. Gain-only methods (no path angles) have no beam-selection score.
- SCM precoding: the principal eigenvector of the map's SCM, not restricted to the codebook, as a share of
  its own bound, eigen-beamforming (MRT) with the true channel on every subcarrier.
- Link-adaptation rate (every method): {link['rate_adaptation']}; {link['adaptation_margin']}
  (ground-truth map: {link['adaptation_margin_db']:.1f} dB).
{_split_setting(link, results['config'])}{_csi_setting(link)}- Map scores over non-building cells (covered: over the cells that receive energy, since cells no
  ray reaches sit at the -250 dB floor); NMSE, PSNR and SSIM on the CKMImageNet pixel mapping
  (-250..-50 dB -> 0..1); AoA RMSE is the RMS angle between predicted and true arrival directions,
  pooled over the mapped paths; at floor: share of the non-building cells the map puts at the -250 dB
  floor (no path) where the truth receives signal. The line under the map table and its footnotes say how
  many cells each score averaged over; a score over fewer cells than the other methods' is marked.

## Map scores
{map_table(results)}

## Rates
Headline over the test UEs the task did not measure (UEs column); shares in brackets over all test UEs.
References (in italics) over the same UEs as the task's methods.
{edge_rate_note(results)}
{rate_table(results)}

### CSI beamforming
Shares of the perfect-CSI beamforming rate (UE array and both codebooks), over the test UEs the task did not
measure (in brackets: all test UEs); gain loss: true average gain of the perfect-CSI pair over that of the
map's pair.

{csi_beamforming_table(results)}

### Gain RMSE [dB] per region
LoS / NLoS of the strongest true path; the transition band holds the non-building cells within 2 cells of
the LoS/NLoS boundary.

{region_table(results)}

## Time
{time_text(timings)}

## Figures
{chr(10).join(f'![{name}]({name})' for name in figures)}
"""
    path = Path(out) / "report.md"
    path.write_text(text)
    return path


def write_evaluation_report(out: Path, results: dict) -> Path:
    """``report.md`` of ``ckmsim evaluate``: per scene the results table, the sweeps and the deployment."""
    parts = [f"# ckmsim evaluate — {results['name']}", ""]
    for study in results["studies"]:
        label = study["label"]
        grid = study["grid"]
        parts += [f"## {label}", "",
                  f"{grid['num_y']} x {grid['num_x']} cells of {grid['cell_size_m']:g} m, BS at "
                  f"({', '.join(f'{v:.1f}' for v in study['bs_position_m'])}) m, {study['link']['num_ues']} UEs; "
                  f"details, maps and CDFs in [{label}/report.md]({label}/report.md).", "",
                  results_table(study), ""]
        parts += [f"Skipped: {s['name']} on {s['task']} ({s['reason']})." for s in study.get("skipped", [])]
        parts += ["", "### Where methods lose, and why", "", findings(study), "", edge_rate_note(study)]
        parts += ["", "### CSI beamforming (share of perfect-CSI beamforming)", "", csi_beamforming_table(study), ""]
        parts += ["### Gain RMSE [dB] per region", "", region_table(study), ""]
        snr = study["sweeps"]["snr"]
        parts += ["### Mean rate [bit/s/Hz] vs BS transmit power (test UEs, pilots paid)", "",
                  _sweep_table("tx power [dBm]", snr["tx_power_dbm"], snr["mean_rate_bps_hz"]), "",
                  f"![rate vs SNR](rate_vs_snr_{label}.png)", ""]
        antennas = study["sweeps"]["bs_antennas"]
        parts += ["### Mean rate [bit/s/Hz] vs BS antennas (ULA, DFT beam selection; test UEs, pilots paid)", "",
                  _sweep_table("antennas", antennas["num_bs_ant"], antennas["mean_rate_bps_hz"]), "",
                  f"![rate vs antennas](rate_vs_antennas_{label}.png)", ""]
        if "coded_link" in study:
            coded = study["coded_link"]
            parts += [f"### Coded link (5G LDPC + QAM, MCS from the map; {coded['num_ues']} UEs, "
                      f"{coded['num_codewords']} codewords each, {coded.get('ues', 'test UEs')}; each map's own "
                      f"back-off, calibrated on the calibration UEs)", "",
                      "| MCS chosen by | back-off [dB] | goodput [bit/s/Hz] | BLER | mean MCS | % of genie goodput |",
                      "|---|---|---|---|---|---|"]
            rows = {**{f"{k} (reference)": v for k, v in coded["references"].items()}, **coded["methods"]}
            for label, entry in rows.items():
                parts.append(f"| {label.replace('_', ' ')} | {_fmt(entry.get('margin_db'), 1)} | "
                             f"{_fmt(entry['goodput_mean_bps_hz'])} | "
                             f"{_fmt(entry['bler_mean'])} | {_fmt(entry['mcs_mean'], 1)} | "
                             f"{_fmt(100 * entry['fraction_of_genie'], 1)} |")
            parts.append("")
        if "deployment" in study:
            deployment = study["deployment"]
            parts += [f"### AP deployment ({deployment['metric'].replace('_', ' ')}, interference "
                      f"{deployment['interference']}, candidate maps from task {deployment['task']})", "",
                      "| chooser | chosen site | oracle site | % of the oracle |", "|---|---|---|---|"]
            for name, outcome in deployment["outcomes"].items():
                chosen = outcome.get("chosen", "-")
                oracle = outcome.get("oracle", "-")
                parts.append(f"| {name.replace('_', ' ')} | {chosen} | {oracle} | "
                             f"{_fmt(100 * outcome['fraction_of_oracle'], 1)} |")
            parts += ["", f"![deployment](deployment_{label}.png)", ""]
    parts += ["## Rate vs map error", "", "![rate vs map error](rate_vs_map_error.png)", "",
              f"Total time {results['timings_s']['total']:.1f} s."]
    path = Path(out) / "report.md"
    path.write_text("\n".join(parts) + "\n")
    return path


def _sweep_table(name: str, x: list, curves: dict) -> str:
    rows = [f"| {name} | " + " | ".join(str(v) for v in x) + " |", "|" + "---|" * (len(x) + 1)]
    for label, values in curves.items():
        rows.append(f"| {label.replace('_', ' ')} | " + " | ".join(_fmt(v, 2) for v in values) + " |")
    return "\n".join(rows)

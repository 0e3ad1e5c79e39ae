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


def map_table(results: dict) -> str:
    """Markdown table of the map scores of every (method, task)."""
    rows = ["| method | task | gain RMSE [dB] (covered) | AoA RMSE [deg] | NMSE | PSNR [dB] | SSIM | SCM cos |",
            "|" + "---|" * 8]
    for record in results["methods"]:
        m = record["map"]
        rows.append(f"| {record['name']} | {record['task']} | {_fmt(m['gain_rmse_db'], 2)} "
                    f"({_fmt(m['covered_gain_rmse_db'], 2)}) | {_fmt(m.get('aoa_rmse_deg'), 1)} | "
                    f"{_fmt(m['nmse'], 4)} | {_fmt(m['psnr_db'], 2)} | {_fmt(m['ssim'])} | "
                    f"{_fmt(m.get('scm_cosine_mean'))} |")
    return "\n".join(rows)


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


def write_report(out: Path, results: dict, title: str = "ckmsim quickstart") -> Path:
    """Write ``report.md`` summarising settings, the results table and the figures."""
    grid, rt, link = results["grid"], results["ray_tracing"], results["link"]
    budget = link["budget"]
    timings = results["timings_s"]
    figures = sorted(p.name for p in Path(out).glob("*.png"))
    text = f"""# {title} — {results['scene']}

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
{_split_setting(link, results['config'])}{_csi_setting(link)}- Map scores over non-building cells (in brackets: over the cells that receive energy, since cells no
  ray reaches sit at the -250 dB floor); NMSE, PSNR and SSIM on the CKMImageNet pixel mapping
  (-250..-50 dB -> 0..1); AoA RMSE is the RMS angle between predicted and true arrival directions,
  pooled over the mapped paths.

## Map scores
{map_table(results)}

## Rates
Headline over the test UEs the task did not measure (UEs column); shares in brackets over all test UEs.
References (in italics) over the same UEs as the task's methods.

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
Ground truth {timings['ground_truth']:.1f} s{' (from cache)' if timings['ground_truth_from_cache'] else ''},
link set-up {timings['link_setup']:.1f} s,
methods and scores {timings['methods_and_scores']:.1f} s,
total {timings.get('total', float('nan')):.1f} s.

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

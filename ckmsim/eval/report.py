"""The markdown report of a run, written beside ``results.json``."""

from __future__ import annotations

from pathlib import Path


def _fmt(value, digits=3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _rate_cells(summary: dict | None) -> str:
    if summary is None:
        return "n/a | n/a | n/a"
    return (f"{_fmt(summary['mean_bps_hz'])} | {_fmt(summary['p5_bps_hz'])} | "
            f"{_fmt(100 * summary['fraction_of_perfect_csi'], 1)}")


def _precoding_cell(summary: dict | None) -> str:
    return "n/a" if summary is None else _fmt(100 * summary["fraction_of_perfect_csi"], 1)


def _adaptation_cells(summary: dict | None) -> str:
    if summary is None:
        return "- | -"
    return f"{_fmt(100 * summary['fraction_of_perfect_csi'], 1)} | {_fmt(100 * summary['outage_fraction'], 1)}"


def results_table(results: dict) -> str:
    """Markdown table: one row per (method, task) with map scores, the beam-selection rate and the
    link-adaptation rate; references first."""
    header = ("| method | task | gain RMSE [dB] (covered) | AoA RMSE [deg] | NMSE | PSNR [dB] | SSIM | SCM cos | "
              "beam sel. mean rate [bit/s/Hz] | 5% rate | % of perfect CSI | SCM precoding % of perfect CSI | "
              "link adapt. % of perfect CSI | outage % |\n|" + "---|" * 14)
    rows = [header]
    references = results["references"]
    for name in ("perfect_csi", "ground_truth_map"):
        rows.append(f"| {name.replace('_', ' ')} | - | - | - | - | - | - | - | {_rate_cells(references[name])} | "
                    f"{_precoding_cell(references.get(name + '_precoding'))} | "
                    f"{_adaptation_cells(references.get(name + '_adaptation'))} |")
    for record in results["methods"]:
        m = record["map"]
        rows.append(f"| {record['name']} | {record['task']} | {_fmt(m['gain_rmse_db'], 2)} ({_fmt(m['covered_gain_rmse_db'], 2)}) | "
                    f"{_fmt(m.get('aoa_rmse_deg'), 1)} | {_fmt(m['nmse'], 4)} | {_fmt(m['psnr_db'], 2)} | "
                    f"{_fmt(m['ssim'])} | {_fmt(m.get('scm_cosine_mean'))} | {_rate_cells(record['rate'])} | "
                    f"{_precoding_cell(record.get('rate_precoding'))} | "
                    f"{_adaptation_cells(record.get('rate_adaptation'))} |")
    return "\n".join(rows)


#: References of the CSI-beamforming table, in order: (key of ``results["references"]``, label).
CSI_REFERENCES = (("perfect_csi_beamforming", "perfect CSI"), ("beam_sweep", "beam sweep (no map)"),
                  ("random_beam", "random beam (no map)"), ("ground_truth_map_csi_beamforming", "ground-truth map"))


def csi_beamforming_table(results: dict) -> str:
    """Markdown table of CSI beamforming (LAD-CKM eqs. (10)-(11)): the references, then one row per
    (method, task) whose map predicts CSI; shares of the perfect-CSI beamforming rate."""
    rows = ["| method | task | mean rate [bit/s/Hz] | 5% rate | % of perfect CSI | mean gain loss [dB] |",
            "|" + "---|" * 6]
    references = results["references"]
    for key, label in CSI_REFERENCES:
        if key in references:
            rows.append(f"| {label} | - | {_rate_cells(references[key])} | - |")
    for record in results["methods"]:
        summary = record.get("rate_csi_beamforming")
        loss = "n/a" if summary is None else _fmt(summary.get("gain_loss_db_mean"), 2)
        rows.append(f"| {record['name']} | {record['task']} | {_rate_cells(summary)} | {loss} |")
    return "\n".join(rows)


def _csi_setting(link: dict) -> str:
    """The report's setting line of CSI beamforming (empty for results without it)."""
    csi = link.get("csi_beamforming")
    if csi is None:
        return ""
    return (f"- CSI beamforming (LAD-CKM eqs. (10)-(11)): {csi['ue_array']['num_ant']}-element UE ULA, DFT codebooks "
            f"at both ends ({csi['num_pairs']} pairs). Each map's per-path layers give a predicted MIMO-OFDM CSI "
            f"({csi['map_csi']}). Rate: {csi['rate']}; rho = {csi['pilot_overhead']:g} for a map, 0 for perfect "
            f"CSI and the random beam, {csi['beam_sweep_overhead']:.3f} for the exhaustive beam sweep.\n")


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


def write_report(out: Path, results: dict, title: str = "ckmsim quickstart") -> Path:
    """Write ``report.md`` summarising settings, the results table and the figures."""
    grid, rt, link = results["grid"], results["ray_tracing"], results["link"]
    budget = link["budget"]
    timings = results["timings_s"]
    figures = sorted(p.name for p in Path(out).glob("*.png"))
    text = f"""# {title} — {results['scene']}

## Setting
- Grid: {grid['num_y']} x {grid['num_x']} cells of {grid['cell_size_m']} m centred on
  ({grid['center_x_m']:.1f}, {grid['center_y_m']:.1f}) m, UEs at {grid['height_m']} m.
- BS at ({', '.join(f'{v:.1f}' for v in results['bs_position_m'])}) m, {link['bs_array']['num_ant']}-element
  half-wavelength ULA, DFT codebook of {link['codebook']['num_beams']} beams.
- Ray tracing (Sionna RT): {rt['frequency_hz'] / 1e9:.1f} GHz, max depth {rt['max_depth']}, diffraction
  {rt['diffraction']}, edge diffraction {rt['edge_diffraction']}; RadioMapSolver {rt['radio_map_samples']:.0e}
  rays for the gain map, PathSolver {rt['path_samples']:.0e} rays per batch of {rt['receivers_per_call']}
  UEs for the per-cell paths; seed {rt['seed']}.
- Link budget: {budget['tx_power_dbm']} dBm over {budget['bandwidth_hz'] / 1e6:.0f} MHz
  ({budget['num_subcarriers']} subcarriers evaluated), noise figure {budget['noise_figure_db']} dB,
  noise power {budget['noise_power_dbm']:.1f} dBm. {link['num_ues']} UEs (non-building cells with a path).
- Beam-selection rate: {link['rate']}. Each map selects the beam from its predicted spatial correlation
  matrix (E-SRResNet eq. (6), strongest {results['config']['num_map_paths']} paths); perfect CSI selects it
  on the true channel. Gain-only methods (no path angles) have no beam-selection score.
- SCM precoding: the principal eigenvector of the map's SCM, not restricted to the codebook, so it may
  exceed the perfect-CSI codebook rate (100 %).
- Link-adaptation rate (every method): {link['rate_adaptation']}; margin {link['adaptation_margin_db']:.1f} dB,
  {link['adaptation_margin']}.
{_csi_setting(link)}- Map scores over non-building cells (in brackets: over the cells that receive energy, since cells no
  ray reaches sit at the -250 dB floor); NMSE, PSNR and SSIM on the CKMImageNet pixel mapping
  (-250..-50 dB -> 0..1); AoA RMSE is the RMS angle between predicted and true arrival directions,
  pooled over the mapped paths.

## Results
{results_table(results)}

### CSI beamforming
Shares of the perfect-CSI beamforming rate (UE array and both codebooks); gain loss: true average gain of the
perfect-CSI pair over that of the map's pair.

{csi_beamforming_table(results)}

### Gain RMSE [dB] per region
LoS / NLoS of the strongest true path; the transition band holds the non-building cells within 2 cells of
the LoS/NLoS boundary.

{region_table(results)}

## Time
Ground truth {timings['ground_truth']:.1f} s{' (from cache)' if timings['ground_truth_from_cache'] else ''},
link set-up {timings['link_setup']:.1f} s (CSI beamforming {_fmt(timings.get('csi_beamforming_setup'), 1)} s more),
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
                  f"{grid['num_y']} x {grid['num_x']} cells of {grid['cell_size_m']} m, BS at "
                  f"({', '.join(f'{v:.1f}' for v in study['bs_position_m'])}) m, {study['link']['num_ues']} UEs; "
                  f"details, maps and CDFs in [{label}/report.md]({label}/report.md).", "",
                  results_table(study), ""]
        parts += [f"Skipped: {s['name']} on {s['task']} ({s['reason']})." for s in study.get("skipped", [])]
        parts += ["", "### CSI beamforming (share of perfect-CSI beamforming)", "", csi_beamforming_table(study), ""]
        parts += ["### Gain RMSE [dB] per region", "", region_table(study), ""]
        snr = study["sweeps"]["snr"]
        parts += ["### Mean rate [bit/s/Hz] vs BS transmit power", "",
                  _sweep_table("tx power [dBm]", snr["tx_power_dbm"], snr["mean_rate_bps_hz"]), "",
                  f"![rate vs SNR](rate_vs_snr_{label}.png)", ""]
        antennas = study["sweeps"]["bs_antennas"]
        parts += ["### Mean rate [bit/s/Hz] vs BS antennas (ULA, DFT beam selection)", "",
                  _sweep_table("antennas", antennas["num_bs_ant"], antennas["mean_rate_bps_hz"]), "",
                  f"![rate vs antennas](rate_vs_antennas_{label}.png)", ""]
        if "coded_link" in study:
            coded = study["coded_link"]
            parts += [f"### Coded link (5G LDPC + QAM, MCS from the map; {coded['num_ues']} UEs, "
                      f"{coded['num_codewords']} codewords each, back-off {coded['margin_db']:.1f} dB)", "",
                      "| MCS chosen by | goodput [bit/s/Hz] | BLER | mean MCS | % of genie goodput |",
                      "|---|---|---|---|---|"]
            rows = {**{f"{k} (reference)": v for k, v in coded["references"].items()}, **coded["methods"]}
            for label, entry in rows.items():
                parts.append(f"| {label.replace('_', ' ')} | {_fmt(entry['goodput_mean_bps_hz'])} | "
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

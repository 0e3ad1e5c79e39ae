"""LAD-CKM's study (issue 16): downlink CSI predicted without the UE's position, scored by the rate of eqs. (10)-(11).

    python experiments/ladckm/run_study.py --dataset datasets/ladckm-cpu --out runs/ladckm-study \\
        --arrays 8x1 16x1 32x1 --run runs/ladckm-cpu-16x1 --run runs/ladckm-cpu-16x1-rho0 [--sigmas 0 2 5 10]

For every BS x UE array of ``--arrays`` (``N_txN_r``, UPAs of :func:`ckmsim.data.dynamic.upa_shape`), on the
test UEs of the dynamic store (split by block: the last ``--test-blocks`` blocks of every tile; ``--split-by
area``: the builder's test tiles), over the 52 measured subcarriers:

- **perfect CSI** (eq. (10) on the true downlink CSI, no pilot), **beam sweep** (every DFT pair measured, its
  overhead paid), **random beam**;
- **uplink (angle reciprocity)**: the pair chosen on the uplink CSI transposed, no downlink pilot -- what an
  FDD system without any map does, and the bar a downlink predictor has to clear;
- **location-based CKM** with UE position error sigma [m]: the sample's static per-path map (traced without
  the moving objects) read at the cell of the *reported* position, true position plus N(0, sigma^2) per
  horizontal axis (clipped into the tile; a reported position on a building takes the nearest open cell),
  its paths turned into CSI by the same code as the true CSI (:func:`ckmsim.raytrace.csi.mimo_ofdm_channel`),
  no pilot;
- every LAD-CKM or FIRE run of ``--run`` whose arrays match, paying the pilot overhead it declares, also with both
  inputs corrupted to each ESNR of ``--esnr-db`` (eq. (22), AWGN; the networks trained on clean inputs).

Rates use a link budget of ``--tx-power-dbm`` over the paper's 20 MHz; NMSE is eq. (12) per UE. Writes
``results.json``, ``report.md``, ``rate_vs_antennas_nr<N_r>.png``, ``rate_vs_position_error_<N_t>x<N_r>.png``
and, with ESNRs, ``rate_vs_esnr_<N_t>x<N_r>.png``.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ckmsim.data.dynamic import dynamic_settings, upa_shape
from ckmsim.data.store import DatasetStore
from ckmsim.link.budget import LinkBudget
from ckmsim.link.codebook import dft_codebook
from ckmsim.link.csi_beamforming import CsiBeamformingScorer
from ckmsim.link.map_csi import map_path_set, reported_cells as map_reported_cells
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.models.ladckm.data import LadCkmEncoding
from ckmsim.models.ladckm.method import LadCkmMethod
from ckmsim.models.ladckm.train import split_csi
from ckmsim.raytrace.csi import mimo_ofdm_channel

#: The paper's OFDM bandwidth [Hz].
BANDWIDTH_HZ = 20e6


def parse_arrays(values) -> list[tuple[int, int]]:
    arrays = []
    for value in values:
        try:
            nt, nr = (int(v) for v in value.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--arrays takes N_txN_r, e.g. 16x1. Received: {value!r}") from None
        arrays.append((nt, nr))
    return arrays


def nmse(h_pred: np.ndarray, h_true: np.ndarray) -> np.ndarray:
    """Eq. (12) per UE: mean over subcarriers of ||H_hat(f) - H(f)||^2 / ||H(f)||^2; ``[U, K, r, t]`` -> ``[U]``."""
    error = np.sum(np.abs(h_pred - h_true) ** 2, axis=(2, 3))
    power = np.maximum(np.sum(np.abs(h_true) ** 2, axis=(2, 3)), 1e-30)
    return np.mean(error / power, axis=1)


def corrupt(h: np.ndarray, esnr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``h`` plus complex AWGN at ESNR = ||H||^2 / ||noise||^2 per UE (eq. (22))."""
    power = np.mean(np.abs(h) ** 2, axis=tuple(range(1, h.ndim)), keepdims=True)
    std = np.sqrt(power / 10 ** (esnr_db / 10) / 2)
    noise = rng.normal(size=h.shape) + 1j * rng.normal(size=h.shape)
    return (h + std * noise).astype(h.dtype)


def reported_cells(ckms: dict, csi: dict, sigma_m: float, rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Per sample, the (row, col) cells of its test UEs' reported positions ``[n, 2]`` (module docstring) on
    its static map ``ckms[sample]`` (:func:`ckmsim.link.map_csi.reported_cells`)."""
    return {index: map_reported_cells(ckm, csi["ue_position_m"][csi["sample"] == index], sigma_m, rng)
            for index, ckm in ckms.items()}


def location_csi(ckms: dict, csi: dict, cells: dict, bs_array: AntennaArray, ue_array: AntennaArray,
                 offsets_hz: np.ndarray, carrier_hz: float) -> np.ndarray:
    """The static per-path map's downlink CSI at each test UE's reported cell on the subcarriers
    ``offsets_hz``, ``[U, K, N_r, N_t]``."""
    num_ue, _, num_ue_ant, num_bs_ant = csi["h_dl"].shape
    out = np.zeros((num_ue, len(offsets_hz), num_ue_ant, num_bs_ant), dtype=np.complex64)
    for index, rc in cells.items():
        chosen = csi["sample"] == index
        paths = map_path_set(ckms[index], (rc[:, 0], rc[:, 1]), carrier_hz, ue_angles=ue_array.num_ant > 1)
        out[chosen] = mimo_ofdm_channel(paths, bs_array, ue_array, offsets_hz)
    return out


def study_arrays(store, nt: int, nr: int, args, methods: list[LadCkmMethod], log=print) -> dict:
    """Every scheme's rates and NMSE for one BS x UE array pair."""
    dynamic, csi_settings = dynamic_settings(store)
    encoding = LadCkmEncoding()
    used = encoding.subcarriers(csi_settings.num_subcarriers)
    test = split_csi(store, "test", args.split_by, args.test_blocks, args.val_blocks, nt, nr)
    h_true = test["h_dl"][:, used]
    rows, cols = upa_shape(nt)
    bs_array = AntennaArray(num_cols=cols, num_rows=rows, spacing_wavelengths=csi_settings.spacing_wavelengths)
    ue_rows, ue_cols = upa_shape(nr)
    ue_array = AntennaArray(num_cols=ue_cols, num_rows=ue_rows, spacing_wavelengths=csi_settings.spacing_wavelengths)
    budget = LinkBudget(tx_power_dbm=args.tx_power_dbm, bandwidth_hz=BANDWIDTH_HZ, num_subcarriers=len(used))
    scorer = CsiBeamformingScorer(h_true, budget.snr_scale, dft_codebook(bs_array),
                                  dft_codebook(ue_array) if nr > 1 else None, precision="single")
    rows_out = {"perfect_csi": {"rate": float(scorer.perfect_csi_rates().mean()), "rho": 0.0},
                "beam_sweep": {"rate": float(scorer.beam_sweep_rates().mean()),
                               "rho": None, "pairs": scorer.num_pairs},
                "random_beam": {"rate": float(scorer.random_beam_rates(args.seed).mean()), "rho": 0.0}}

    def score(name: str, h_pred: np.ndarray, rho: float, **extra) -> None:
        result = scorer.rates(h_pred, rho)
        errors = nmse(h_pred, h_true)
        # medians beside the mean NMSE: a UE whose prediction is far too strong (a map read next to the BS)
        # dominates any mean of NMSE or of dB losses
        rows_out[name] = {"rate": float(result.rate_bps_hz.mean()), "rho": rho, "nmse": float(np.mean(errors)),
                          "nmse_median": float(np.median(errors)),
                          "gain_loss_db_median": float(np.median(result.gain_loss_db)),
                          "same_pair_as_perfect": float(np.mean((result.bs_beam == scorer.perfect_bs_beam)
                                                                & (result.ue_beam == scorer.perfect_ue_beam))),
                          **extra}

    score("uplink", np.swapaxes(test["h_ul"][:, used], -1, -2), 0.0)
    offsets = csi_settings.subcarrier_offsets_hz()[used]
    # the test samples' static maps, read once for every position error
    ckms = {int(i): store.ckm(int(i)) for i in np.unique(test["sample"])} if args.sigmas else {}
    for sigma in args.sigmas:
        cells = reported_cells(ckms, test, sigma, np.random.default_rng([args.seed, int(round(10 * sigma))]))
        score(f"location_sigma{sigma:g}m", location_csi(ckms, test, cells, bs_array, ue_array, offsets,
                                                        csi_settings.downlink_hz), 0.0, sigma_m=sigma)
    for method in methods:
        if (method.num_bs_antennas, method.num_ue_antennas) != (nt, nr):
            continue
        h_pred = method.predict_downlink(test["h_ul"], test["h_dl"])
        score(method.label, h_pred, method.downlink_pilot_overhead, seconds_per_ue=method.seconds_per_ue)
        for esnr in args.esnr_db:
            rng = np.random.default_rng([args.seed, int(round(10 * esnr)) + 1000])
            noisy = method.predict_downlink(corrupt(test["h_ul"], esnr, rng), corrupt(test["h_dl"], esnr, rng))
            score(f"{method.label}_esnr{esnr:g}dB", noisy, method.downlink_pilot_overhead, esnr_db=esnr)
    log(f"  {nt}x{nr}: {len(h_true)} test UEs; " + ", ".join(f"{k} {v['rate']:.3f}" for k, v in rows_out.items()))
    return {"num_bs_antennas": nt, "num_ue_antennas": nr, "num_test_ues": int(len(h_true)),
            "snr_scale_db": float(10 * np.log10(budget.snr_scale)), "rows": rows_out}


def write_report(out: Path, results: dict) -> None:
    lines = [f"# LAD-CKM study on `{results['dataset']}` (split by {results['split_by']})", "",
             "Mean effective rate [bit/s/Hz] over the test UEs (eq. (11), pilot overhead paid), NMSE of the "
             "predicted downlink CSI (eq. (12)).", ""]
    for entry in results["arrays"]:
        lines += [f"## N_t = {entry['num_bs_antennas']}, N_r = {entry['num_ue_antennas']} "
                  f"({entry['num_test_ues']} UEs)", "", "| scheme | rho | rate | NMSE mean / median | median gain loss [dB] | "
                  "perfect-CSI pair |", "|---|---:|---:|---:|---:|---:|"]
        for name, row in entry["rows"].items():
            rho = "-" if row.get("rho") is None else f"{row['rho']:.3f}"
            nmse_text = f"{row['nmse']:.3g} / {row['nmse_median']:.3g}" if "nmse" in row else "-"
            loss = f"{row['gain_loss_db_median']:.2f}" if "gain_loss_db_median" in row else "-"
            same = f"{100 * row['same_pair_as_perfect']:.1f} %" if "same_pair_as_perfect" in row else "-"
            lines.append(f"| {name} | {rho} | {row['rate']:.3f} | {nmse_text} | {loss} | {same} |")
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))


def _finish(fig, ax, xlabel: str, title: str, path: Path) -> None:
    """Axis labels, grid, key and the file of one figure."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel("effective rate [bit/s/Hz]")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _is_predictor(name: str) -> bool:
    """A trained CSI predictor's row (not a reference, a location-based map or an ESNR variant)."""
    return not name.startswith(("perfect", "beam", "random", "uplink", "location")) and "esnr" not in name


def plot(out: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for nr in sorted({e["num_ue_antennas"] for e in results["arrays"]}):
        entries = [e for e in results["arrays"] if e["num_ue_antennas"] == nr]
        # every scheme of any array (a network trained for some arrays only is drawn where it exists)
        names = list(dict.fromkeys(n for e in entries for n in e["rows"] if "esnr" not in n and not (
            n.startswith("location") and not n.endswith("sigma0m"))))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name in names:
            points = [(e["num_bs_antennas"], e["rows"][name]["rate"]) for e in entries if name in e["rows"]]
            ax.plot(*zip(*points), marker="o", label=name, linestyle="-" if len(points) > 1 else "none")
        ax.set_xscale("log", base=2)
        ax.set_xticks([e["num_bs_antennas"] for e in entries], [str(e["num_bs_antennas"]) for e in entries])
        _finish(fig, ax, "BS antennas N_t", f"Rate vs BS antennas, N_r = {nr}", out / f"rate_vs_antennas_nr{nr}.png")
    for entry in results["arrays"]:
        rows = entry["rows"]
        label = f"N_t = {entry['num_bs_antennas']}, N_r = {entry['num_ue_antennas']}"
        suffix = f"{entry['num_bs_antennas']}x{entry['num_ue_antennas']}"
        sigmas = sorted(r["sigma_m"] for r in rows.values() if "sigma_m" in r)
        references = [name for name in rows if name in ("perfect_csi", "uplink") or _is_predictor(name)]
        if sigmas:
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            ax.plot(sigmas, [rows[f"location_sigma{s:g}m"]["rate"] for s in sigmas], marker="o",
                    label="location-based CKM")
            for k, name in enumerate(references, start=1):
                ax.axhline(rows[name]["rate"], linestyle=("--", ":", "-.")[k % 3], linewidth=1.2, label=name,
                           color=plt.get_cmap("tab10")(k))
            _finish(fig, ax, "UE position error sigma [m]", label, out / f"rate_vs_position_error_{suffix}.png")
        noisy = sorted({r["esnr_db"] for r in rows.values() if "esnr_db" in r})
        if noisy:
            fig, ax = plt.subplots(figsize=(6.4, 4.2))
            for k, name in enumerate(n for n in rows if _is_predictor(n)):
                points = [(e, rows[f"{name}_esnr{e:g}dB"]["rate"]) for e in noisy if f"{name}_esnr{e:g}dB" in rows]
                if points:
                    ax.plot(*zip(*points), marker="o", label=name, color=plt.get_cmap("tab10")(k))
            ax.axhline(rows["perfect_csi"]["rate"], linestyle="--", color="black", linewidth=1, label="perfect_csi")
            _finish(fig, ax, "ESNR of the uplink and pilot inputs [dB]", label, out / f"rate_vs_esnr_{suffix}.png")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dynamic-CSI dataset store")
    parser.add_argument("--out", required=True)
    parser.add_argument("--arrays", nargs="+", default=["8x1", "16x1", "32x1"], help="N_txN_r pairs")
    parser.add_argument("--run", action="append", default=[], help="LAD-CKM run folder (repeatable)")
    parser.add_argument("--sigmas", type=float, nargs="*", default=[0.0, 2.0, 5.0, 10.0])
    parser.add_argument("--esnr-db", type=float, nargs="*", default=[])
    parser.add_argument("--split-by", choices=("block", "area"), default="block")
    parser.add_argument("--test-blocks", type=int, default=4)
    parser.add_argument("--val-blocks", type=int, default=2)
    parser.add_argument("--tx-power-dbm", type=float, default=0.0,
                        help="BS transmit power [dBm] over 20 MHz (0 dBm: mean rates of a few bit/s/Hz on the CPU dataset)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    store = DatasetStore.open(args.dataset)
    dynamic_settings(store)
    methods = []
    for run in args.run:
        method = LadCkmMethod.from_run(run)
        method.label = f"{method.label}_rho{method.downlink_pilot_overhead:.3f}"
        if any(m.label == method.label for m in methods):
            # another seed of the same network: its own row, named by its run folder
            method.label = f"{method.label}_{Path(run).name}"
        methods.append(method)
    arrays = [study_arrays(store, nt, nr, args, methods) for nt, nr in parse_arrays(args.arrays)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"dataset": str(args.dataset), "split_by": args.split_by, "test_blocks": args.test_blocks,
               "val_blocks": args.val_blocks, "runs": args.run, "tx_power_dbm": args.tx_power_dbm,
               "bandwidth_hz": BANDWIDTH_HZ, "arrays": arrays, "wall_s": time.perf_counter() - started}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(out, results)
    plot(out, results)
    print((out / "report.md").read_text())
    return results


if __name__ == "__main__":
    main()

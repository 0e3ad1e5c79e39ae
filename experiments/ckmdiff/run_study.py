"""CKMDiff study on a held-out city (issue 15): the paper's map metrics (Tables III-VIII: gain MSE, pixel MSE,
RMSE, NMSE, PSNR, SSIM) for each task and method, plus a link-adaptation rate from each completed map and the
spread of CKMDiff's samples with its calibration.

For every test map and task the observation is drawn once (seeded) and every method completes the same one.
Scores are over the open cells the task did not measure (the measured cells of a denoising task are all of
them: there every cell counts). Methods: CKMDiff at S sampling steps (``--steps``, several allowed) with K
samples (``--samples``; the prediction is their mean), bicubic (lattice tasks), bilinear (lattice tasks), KNN
(k = 4) and the observation itself where it covers the cell (denoising).

Rates: gain-only stores have no per-path channel, so the link sees the large-scale channel of the true map:
a UE at a cell gets ``log2(1 + P/N g_hat 10^(-m/10))`` when it is at most ``log2(1 + P/N g)`` (the true
gain ``g``), else nothing (outage). Each method's margin ``m`` is the smallest that keeps its outage at 10 %
on calibration cells (:func:`ckmsim.eval.holdout.spatial_block_split`, a quarter of 4 x 4-cell blocks) among
the scored (unmeasured) cells, and rates are over the other scored cells. Perfect CSI (the true map, margin 0) is the bound. ``ckmdiff_S*_risk`` is the
risk-aware variant: the same mean map with a per-cell margin ``m0 + a`` times the spread (std) of the K samples,
``m0`` and ``a`` calibrated on the same cells (:func:`risk_aware_rates`); its "margin" column is the mean margin.

Coded link (``--coded-cells``): on a seeded subset of each map's rate cells, the 5G NR LDPC link of
:mod:`ckmsim.link.coded` over the flat channel of the true gain (``|h|^2 = 10^(g/10)``); the predicted gain plus
``10 log10(snr_scale)`` is the predicted SNR, and the MCS is chosen with the method's calibrated margin (the genie
"perfect" row: the true SNR, no margin). Goodput ``(1 - BLER) SE``, BLER measured on the true channel.

AP decisions (per area: the test maps of one tile are the maps of its APs): every cell is served by the AP
whose completed map predicts the highest gain, scored by the true rate against the true max-gain association
(``association_share``); and one AP site chosen among the area's APs by its completed map's mean rate
(:func:`ckmsim.link.deployment.choose_site`), scored by its true mean rate against the best site
(``deployment_share``; ``random`` is the mean over the sites, what a random choice earns on average).

Learned baselines: ``--baseline NAME=RUN`` adds a :class:`~ckmsim.models.pix2pix.method.Pix2PixMethod` run
(pix2pix or RadioUNet) under ``NAME``; it completes the tasks it was trained for.

    python experiments/ckmdiff/run_study.py --run runs/ckmdiff-cpu-s0 --dataset datasets/crossap-dense11 \\
        --out runs/ckmdiff-study-s0 --maps 60 [--baseline pix2pix_s0=runs/pix2pix-cpu-s0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np

from ckmsim.baselines.interpolation import KNN, Bicubic, Bilinear
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.eval.holdout import measured_cells, spatial_block_split
from ckmsim.link.budget import LinkBudget
from ckmsim.link.deployment import DeploymentObjective, choose_site
from ckmsim.maps.degrade import Degradation
from ckmsim.metrics.map_metrics import mse, nmse, psnr_db, ssim
from ckmsim.models.ckmdiff.data import load_truths
from ckmsim.models.ckmdiff.method import CKMDiffMethod

TARGET_OUTAGE = 0.1


#: Margins tried by the calibration [dB]; the last is used when none meets the outage target.
MARGINS_DB = np.arange(0.0, 60.01, 0.5)


def _capacity(true_db, snr_scale):
    """Perfect-CSI rate [bit/s/Hz] of each cell. float64 throughout: a float32 truth against a float64
    prediction of the same value would read as outage."""
    return np.log2(1.0 + snr_scale * 10 ** (np.asarray(true_db, dtype=np.float64) / 10.0))


def _rates(backed_off_db, capacity, snr_scale):
    """The rate a (backed-off) predicted gain sets, where the true capacity supports it, else 0 (outage)."""
    chosen = _capacity(backed_off_db, snr_scale)
    return np.where(chosen <= capacity, chosen, 0.0)


def _smallest_margin(pred_db, capacity, snr_scale):
    """The smallest margin of :data:`MARGINS_DB` that keeps the outage at the target, or None."""
    for m in MARGINS_DB:
        if np.mean(_capacity(pred_db - m, snr_scale) > capacity) <= TARGET_OUTAGE:
            return float(m)
    return None


def link_rates(pred_db, true_db, calibration, test, snr_scale):
    """Per-cell rates [bit/s/Hz] over ``test`` with the margin calibrated on ``calibration`` (module docstring)."""
    pred_db = np.asarray(pred_db, dtype=np.float64)
    capacity = _capacity(true_db, snr_scale)
    margin = _smallest_margin(pred_db[calibration], capacity[calibration], snr_scale)
    margin = float(MARGINS_DB[-1]) if margin is None else margin
    return _rates(pred_db[test] - margin, capacity[test], snr_scale), margin


def risk_aware_rates(pred_db, spread_db, true_db, calibration, test, snr_scale):
    """Rates with a per-cell margin ``m0 + a * spread`` (the std of CKMDiff's samples at the cell [dB]): for each
    ``a`` in a small grid the smallest ``m0`` that keeps the outage at 10 % on the calibration cells, and the
    ``a`` whose calibration cells then get the highest mean rate (``a = 0`` is the fixed margin, so the choice
    can only match or beat it there); scored on ``test``. Returns rates, ``a`` and ``m0``."""
    pred_db, spread_db = np.asarray(pred_db, dtype=np.float64), np.asarray(spread_db, dtype=np.float64)
    capacity = _capacity(true_db, snr_scale)
    best = (-1.0, 0.0, float(MARGINS_DB[-1]))
    for a in (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0):
        backed_off = (pred_db - a * spread_db)[calibration]
        m0 = _smallest_margin(backed_off, capacity[calibration], snr_scale)
        if m0 is not None:
            mean = float(np.mean(_rates(backed_off - m0, capacity[calibration], snr_scale)))
            if mean > best[0]:
                best = (mean, a, m0)
    _, a, m0 = best
    return _rates((pred_db - a * spread_db)[test] - m0, capacity[test], snr_scale), a, m0


def calibration_cells(calibration, cells, building):
    """The calibration cells among the scored ones; all open calibration cells when the scored cells hold none
    (a small box that the block draw left wholly to the test side)."""
    chosen = calibration & cells
    return chosen if chosen.any() else calibration & ~building


def _mean_defined(values) -> float:
    """Mean over the maps where a metric is defined: NMSE is inf where the scored truth pixels are all 0 (a box
    on floor cells), PSNR inf where a map is exact there, SSIM NaN where no window fits."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _ssim_or_nan(pred_px, true_px, cells) -> float:
    """SSIM over the scored cells; NaN when they all lie within half a window of the map edge (a box in a
    corner), where SSIM's windows do not fit (left out of the means)."""
    try:
        return ssim(pred_px, true_px, cells)
    except CkmsimError:
        return float("nan")


def scores(method_db, truth, encoding, cells, calibration, snr_scale):
    true_db = truth["gain_db"].values
    building = truth["building"].values
    pred_px, true_px = encoding.gain_pixels(method_db, building), encoding.gain_pixels(true_db, building)
    out = {"gain_mse_db2": mse(np.clip(method_db, *encoding.gain_range_db), np.clip(true_db, *encoding.gain_range_db),
                               cells),
           "pixel_mse": mse(pred_px, true_px, cells), "nmse": nmse(pred_px, true_px, cells),
           "psnr_db": psnr_db(pred_px, true_px, cells), "ssim": _ssim_or_nan(pred_px, true_px, cells)}
    # true gains below the pixel range are the RadioMapSolver floor: clip both ends to the range, as the pixels do
    clipped_true = np.clip(true_db, *encoding.gain_range_db)
    # the margin is calibrated on unmeasured cells like the scored ones (a measured cell is near-exact and
    # would make it too small for the cells the task hid)
    rates, margin = link_rates(np.clip(method_db, *encoding.gain_range_db), clipped_true,
                               calibration_cells(calibration, cells, building), cells & ~calibration, snr_scale)
    out.update(mean_rate=float(rates.mean()), outage=float(np.mean(rates == 0.0)), margin_db=margin)
    return out


def coded_cells(cells: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded subset of at most ``count`` of ``cells`` ([H, W] bool) as a mask: the coded link's UEs."""
    flat = np.flatnonzero(cells)
    chosen = np.zeros(cells.size, bool)
    chosen[rng.choice(flat, size=min(count, flat.size), replace=False)] = True
    return chosen.reshape(cells.shape)


def coded_scorer(true_db: np.ndarray, ue_cells: np.ndarray, snr_scale: float, num_codewords: int):
    """The coded link of the UEs at ``ue_cells`` over the flat channel of their true gain ``true_db`` [dB]."""
    from ckmsim.link.coded import CodedLinkScorer

    h_eff = np.sqrt(10.0 ** (np.asarray(true_db, np.float64)[ue_cells] / 10.0))[:, None].astype(np.complex128)
    return CodedLinkScorer(h_eff, snr_scale, num_codewords=num_codewords)


def coded_goodput(scorer, pred_db: np.ndarray, ue_cells: np.ndarray, margin_db: float, snr_scale: float) -> dict:
    """Mean goodput [bit/s/Hz] and BLER when the predicted gain (plus the budget's SNR scale) picks the MCS
    with the method's calibrated margin."""
    scorer.margin_db = float(margin_db)
    outcome = scorer.score(10.0 * np.log10(snr_scale) + np.asarray(pred_db, np.float64)[ue_cells])
    return {"coded_goodput": float(outcome.goodput_bps_hz.mean()), "coded_bler": float(outcome.bler.mean())}


def ap_decisions(pred_db: np.ndarray, true_db: np.ndarray, users: np.ndarray, budget: LinkBudget) -> dict:
    """Max-gain association and single-site deployment of one area from its APs' completed maps.

    pred_db, true_db : [num_ap, H, W] gain [dB] (buildings may be NaN); users : [H, W] bool (open cells).
    Returns the true rate of each decision as a share of the true maps' decision, and the random site's share.
    """
    pred = np.nan_to_num(np.asarray(pred_db, np.float64), nan=-np.inf)
    true = np.nan_to_num(np.asarray(true_db, np.float64), nan=-np.inf)
    capacity = np.log2(1.0 + budget.snr_scale * 10.0 ** (true / 10.0))        # [num_ap, H, W]
    chosen = np.take_along_axis(capacity, np.argmax(pred, axis=0)[None], axis=0)[0]
    association = float(chosen[users].mean() / capacity.max(axis=0)[users].mean())
    site = choose_site(np.zeros((0,) + users.shape), pred, true, users,
                       DeploymentObjective(budget=budget))
    return {"association_share": association, "deployment_share": site.fraction_of_oracle,
            "random_deployment_share": float(np.mean(site.true_values) / site.oracle_true_value)}


def parse_baselines(entries) -> dict:
    """``NAME=RUN`` entries as fitted :class:`~ckmsim.models.pix2pix.method.Pix2PixMethod` s by name."""
    from ckmsim.models.pix2pix.method import Pix2PixMethod

    baselines = {}
    for entry in entries or ():
        name, sep, run = entry.partition("=")
        if not sep or not name or not run:
            raise SystemExit(f"--baseline takes NAME=RUN (a pix2pix / RadioUNet run folder). Received: {entry!r}")
        baselines[name] = Pix2PixMethod(run).fit()
    return baselines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="CKMDiff run folder (its tasks are the study's)")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True)
    parser.add_argument("--maps", type=int, default=60, help="test maps (every k-th of the split)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", action="append", metavar="NAME=RUN",
                        help="a pix2pix / RadioUNet run scored beside the others (repeatable)")
    parser.add_argument("--coded-cells", type=int, default=16,
                        help="UEs per map and task on the coded LDPC link (0: no coded link)")
    parser.add_argument("--coded-codewords", type=int, default=32)
    args = parser.parse_args(argv)

    store = DatasetStore.open(args.dataset)
    indices = store.indices(args.split)
    truths = load_truths(store, args.split)
    pick = np.linspace(0, len(truths) - 1, min(args.maps, len(truths))).round().astype(int)
    truths = [truths[i] for i in pick]
    # the area of each map: its scene and tile (the maps of one tile are its APs)
    areas = [(store.records[int(indices[i])]["scene"], store.records[int(indices[i])].get("tile_index"))
             for i in pick]
    base = CKMDiffMethod.from_run(args.run)
    encoding = base.encoding_
    degradations = [Degradation.from_config({"steps": r["steps"]}) for r in base.info_["degradations"]
                    if "steps" in r]
    budget = LinkBudget()
    snr_scale = budget.snr_scale
    methods = {f"ckmdiff_S{s}": CKMDiffMethod(args.run, num_steps=s, num_samples=args.samples, seed=args.seed).fit()
               for s in args.steps}
    # the classical methods and the learned baselines: one map per observation
    single = {"bicubic": Bicubic(), "bilinear": Bilinear(), "knn": KNN(), **parse_baselines(args.baseline)}
    records, timing, completed = [], {}, {}
    started = time.perf_counter()
    for m_index, truth in enumerate(truths):
        rows, cols = np.nonzero(~truth["building"].values)
        split = spatial_block_split(rows, cols, seed=args.seed + m_index)
        calibration = np.zeros(truth["building"].shape, bool)
        calibration[rows[split.calibration], cols[split.calibration]] = True
        true_db = np.clip(truth["gain_db"].values, *encoding.gain_range_db)
        for d_index, degradation in enumerate(degradations):
            observation = degradation(truth, seed=np.random.default_rng([args.seed, m_index, d_index]))
            measured = measured_cells(observation)
            open_cells = ~truth["building"].values
            cells = open_cells & ~measured if (open_cells & ~measured).any() else open_cells
            record = {"map": int(pick[m_index]), "task": degradation.task, "methods": {}}
            maps = {"perfect": truth["gain_db"].values}
            for name, method in single.items():
                if method.unsupported_reason(observation) is None:
                    t0 = time.perf_counter()
                    maps[name] = method.predict(observation)["gain_db"].values
                    timing.setdefault(name, []).append(time.perf_counter() - t0)
                    record["methods"][name] = scores(maps[name], truth, encoding, cells, calibration, snr_scale)
            record["methods"]["perfect"] = scores(truth["gain_db"].values, truth, encoding, cells, calibration,
                                                  snr_scale)
            for name, method in methods.items():
                t0 = time.perf_counter()
                samples = method.predict_samples(observation)
                timing.setdefault(name, []).append((time.perf_counter() - t0) / samples.shape[0])
                mean_db = samples.mean(axis=0)
                maps[name] = mean_db
                s = scores(mean_db, truth, encoding, cells, calibration, snr_scale)
                record["methods"][name] = s
                if samples.shape[0] > 1:
                    low, high = np.percentile(samples, [10, 90], axis=0)
                    spread = samples.std(axis=0)
                    s["spread_db"] = float(np.mean(spread[cells]))
                    s["coverage_80"] = float(np.mean(((true_db >= low) & (true_db <= high))[cells]))
                    rates, factor, offset = risk_aware_rates(np.clip(mean_db, *encoding.gain_range_db), spread,
                                                             true_db,
                                                             calibration_cells(calibration, cells,
                                                                               truth["building"].values),
                                                             cells & ~calibration, snr_scale)
                    record["methods"][name + "_risk"] = {**s, "mean_rate": float(rates.mean()),
                                                         "outage": float(np.mean(rates == 0.0)),
                                                         "margin_db": float(offset + factor * np.mean(spread[cells])),
                                                         "margin_offset_db": offset, "spread_factor": factor}
                    # what the risk-aware rate reads: the clipped mean backed off per cell (less the offset m0)
                    maps[name + "_risk"] = np.clip(mean_db, *encoding.gain_range_db) - factor * spread
            if args.coded_cells > 0:
                ue_cells = coded_cells(cells & ~calibration, args.coded_cells,
                                       np.random.default_rng([args.seed, m_index, d_index, 1]))
                scorer = coded_scorer(true_db, ue_cells, snr_scale, args.coded_codewords)
                for name, values in record["methods"].items():
                    # the genie (true SNR, no margin) for "perfect"; a risk-aware row backs off per cell
                    margin = 0.0 if name == "perfect" else values.get("margin_offset_db", values["margin_db"])
                    pred = maps[name] if name.endswith("_risk") else np.clip(maps[name], *encoding.gain_range_db)
                    values.update(coded_goodput(scorer, pred, ue_cells, margin, snr_scale))
            for name, values in maps.items():
                if not name.endswith("_risk"):   # decisions read the completed (mean) maps
                    completed.setdefault((areas[m_index], degradation.task, name), []).append(values)
            records.append(record)
        print(f"map {m_index + 1}/{len(truths)} ({time.perf_counter() - started:.0f} s)", flush=True)

    decisions = area_decisions(completed, truths, areas, budget)
    summary = {}
    for task in sorted({r["task"] for r in records}):
        table = {}
        for r in (r for r in records if r["task"] == task):
            for name, values in r["methods"].items():
                for key, value in values.items():
                    table.setdefault(name, {}).setdefault(key, []).append(value)
        summary[task] = {name: {key: _mean_defined(v) for key, v in values.items()} for name, values in table.items()}
        for name, values in decisions.get(task, {}).items():
            for key in ("association_share", "deployment_share", "random_deployment_share"):
                summary[task].setdefault(name, {})[key] = _mean_defined([v[key] for v in values])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python experiments/ckmdiff/run_study.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "run": args.run, "dataset": args.dataset, "split": args.split, "num_maps": len(truths),
              "samples": args.samples, "steps": args.steps, "seed": args.seed,
              "baselines": list(args.baseline or []), "coded_cells": args.coded_cells,
              "coded_codewords": args.coded_codewords, "num_areas": len(set(areas)), "summary": summary,
              "seconds_per_sample": {k: float(np.median(v)) for k, v in timing.items()}, "records": records,
              "decisions": decisions}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = report_lines(result)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def area_decisions(completed: dict, truths: list, areas: list, budget: LinkBudget) -> dict:
    """:func:`ap_decisions` of each area with two or more APs, per task and method: ``{task: {method: [..]}}``."""
    decisions = {}
    for area in sorted(set(areas)):
        members = [i for i, a in enumerate(areas) if a == area]
        if len(members) < 2:
            continue
        true_db = np.stack([truths[i]["gain_db"].values for i in members])
        users = ~truths[members[0]]["building"].values
        for (key_area, task, name), maps in completed.items():
            if key_area == area and len(maps) == len(members):
                decisions.setdefault(task, {}).setdefault(name, []).append(
                    {"area": list(area), **ap_decisions(np.stack(maps), true_db, users, budget)})
    return decisions


def report_lines(result: dict) -> list[str]:
    lines = [f"# CKMDiff study: {result['num_maps']} maps of split '{result['split']}' of {result['dataset']} "
             f"({result['num_areas']} areas)", ""]
    for task, table in result["summary"].items():
        lines += [f"## {task}", "", "| method | gain MSE [dB^2] | pixel MSE | NMSE | PSNR [dB] | SSIM | mean rate "
                  "[bit/s/Hz] | outage | margin [dB] | spread [dB] | truth in 10-90 % | coded goodput [bit/s/Hz] "
                  "| coded BLER | association / oracle | site / oracle |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, s in table.items():
            if "gain_mse_db2" not in s:
                continue
            lines.append(f"| {name} | {s['gain_mse_db2']:.1f} | {s['pixel_mse']:.4f} | {s['nmse']:.4f} | "
                         f"{s['psnr_db']:.2f} | {s['ssim']:.3f} | {s['mean_rate']:.3f} | {s['outage']:.3f} | "
                         f"{s['margin_db']:.1f} | {s.get('spread_db', float('nan')):.1f} | "
                         f"{s.get('coverage_80', float('nan')):.2f} | {s.get('coded_goodput', float('nan')):.3f} | "
                         f"{s.get('coded_bler', float('nan')):.3f} | {s.get('association_share', float('nan')):.3f} | "
                         f"{s.get('deployment_share', float('nan')):.3f} |")
        random_share = table.get("perfect", {}).get("random_deployment_share")
        if random_share is not None:
            lines.append(f"\nA random site earns {random_share:.3f} of the best site's mean rate on average.")
        lines.append("")
    lines.append("Time per map: " + ", ".join(f"{k} {1e3 * v:.0f} ms" for k, v in result["seconds_per_sample"].items()))
    return lines


if __name__ == "__main__":
    main()

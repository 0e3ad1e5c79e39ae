"""The E-SRResNet paper's study on ckmsim data: Table I, the input ablation (Fig. 7), the SCM cosine-similarity
map (eq. (9), Fig. 9) and the link score of each method's SCMs, on held-out scenes.

    python experiments/esrresnet/run_study.py experiments/esrresnet/study-cpu.toml \
        [--dataset DIR] [--runs DIR] [--out DIR] [--link-samples N]

Inputs: a dataset store (``dataset-*.toml``) and the trained runs of ``train-*.toml`` (``<runs>/<name>/best.keras``).
Every method sees the x2 uniform sub-sampling (eq. (7)) of each held-out sample and completes the full map.

Outputs in ``out``:

- ``table1.md`` / ``results.json``: RMSE of PGM1, PAM1, PGM2, PAM2 per method (bicubic, KNN, SRResNet,
  E-SRResNet, and E-SRResNet without data consistency, ``esrresnet-raw``: the network's output also at the
  measured cells, as in the paper), pooled over every scored cell of every held-out sample; improvement over bicubic and KNN.
  Cells scored: non-building cells where the true path exists (``path_gain_db`` above the floor; a PAM needs
  a finite true angle). Angle errors are wrapped to (-180, 180] deg. (The paper scores CKMImageNet pixels,
  where an absent path is pixel 0; ckmsim scores physical values where there is a path to score.)
- the ablation (primary path, Fig. 7): PGM1/PAM1 RMSE for PGM+PAM, + building, + building + LoS, and the full
  5-channel input; ``fig_ablation.png``.
- the cosine similarity of each method's SCM (eq. (6), 64-element ULA, d = lambda / 2, paths 1 and 2 with
  elevation 0 as in the paper's 2-D model) against the true SCM, eq. (9): mean and share of cells above 0.8;
  ``fig_cosine_map.png`` (Fig. 9) and ``fig_maps.png`` (Fig. 8) for one held-out sample.
- the link score on ``link.num_samples`` held-out samples, whose paths are re-traced at every open cell with the
  dataset's ray-tracing settings (cached in ``out/link_truth``): rate of DFT beam selection and of SCM
  eigen-precoding driven by each method's map (and by the true map), against perfect CSI, on the true channels.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import json
import shutil
import time
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.baselines.interpolation import KNN, Bicubic, CodedBicubic
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import GAIN_FLOOR_DB, grid_of, read_ckm, write_ckm
from ckmsim.maps.degrade import Degradation, Subsample
from ckmsim.maps.scm import scm_from_paths
from ckmsim.metrics.map_metrics import scm_cosine_similarity

TABLE_METHODS = ("bicubic", "bicubic-coded", "knn", "srresnet", "esrresnet", "esrresnet-raw")
ABLATION = (("PGM+PAM", "ablation-pgm-pam", "pgm_pam"), ("+ building", "ablation-building", "building"),
            ("+ building + LoS", "ablation-building-los", "building_los"),
            ("+ building + LoS + BS map (E-SRResNet)", "esrresnet-primary", "primary"))
DEFAULTS = {"dataset": "../../datasets/esrresnet-cpu", "runs": "../../runs/esrresnet-cpu",
            "out": "../../runs/esrresnet-cpu/study", "split": "test", "factor": 2, "knn_k": 4, "num_bs_ant": 64,
            "cosine_threshold": 0.8, "figure_sample": 0, "model_file": "best.keras"}
LINK_DEFAULTS = {"num_samples": 2, "oversampling": 1}
#: Cells per SCM batch ([cells, 64, 64] complex128 is 64 KiB per cell).
SCM_CHUNK = 256


# ----------------------------------------------------------------------------------------------------------
# Config and methods
# ----------------------------------------------------------------------------------------------------------

def load_study_config(path: Path, overrides: dict) -> dict:
    """``[study]`` and ``[link]`` of the study TOML with defaults; paths absolute (relative to the file)."""
    raw = tomllib.loads(path.read_text())
    unknown = sorted(set(raw) - {"study", "link"})
    if unknown:
        raise CkmsimError(f"Study config '{path}': unknown section(s) {unknown}; expected [study] and [link]")
    study, link = dict(raw.get("study", {})), dict(raw.get("link", {}))
    for table, defaults, name in ((study, DEFAULTS, "study"), (link, LINK_DEFAULTS, "link")):
        bad = sorted(set(table) - set(defaults))
        if bad:
            raise CkmsimError(f"Study config '{path}': unknown key(s) {bad} in [{name}]; expected a subset of "
                              f"{sorted(defaults)}")
    config = {**DEFAULTS, **study, "link": {**LINK_DEFAULTS, **link}}
    for key in ("dataset", "runs", "out"):
        config[key] = Path(overrides[key]) if overrides.get(key) else (path.parent / config[key]).resolve()
    if overrides.get("link_samples") is not None:
        config["link"]["num_samples"] = int(overrides["link_samples"])
    if overrides.get("factor") is not None:
        config["factor"] = int(overrides["factor"])
    return config


def make_methods(config: dict, store: DatasetStore) -> tuple[dict, dict, dict]:
    """``(table methods, ablation methods, snap tuning)``, name -> fitted Method; missing runs are left out.

    Each network is given the encoding it was trained with (its run's ``train_config.json``). The snap decoding
    of each network pair (:mod:`ckmsim.models.esrresnet.snap`) is chosen on the validation city
    (``tune_snaps``); ``<name>-plain`` is the same networks without it.
    """
    from ckmsim.models.esrresnet.method import ESRResNetMethod, tune_snaps

    runs, model_file = Path(config["runs"]), config["model_file"]

    def network(label, primary, secondary=None, keep_observed=True, snaps=None):
        folders = [runs / primary] + ([runs / secondary] if secondary else [])
        missing = [str(folder / model_file) for folder in folders if not (folder / model_file).is_file()]
        if missing:
            print(f"  {label}: no trained model at {missing}; left out")
            return None
        encoders = [json.loads((folder / "train_config.json").read_text())["run"]["encoder"] for folder in folders]
        return ESRResNetMethod(folders[0] / model_file, folders[1] / model_file if secondary else None,
                               primary_encoder=encoders[0], secondary_encoder=encoders[1] if secondary else None,
                               label=label, keep_observed=keep_observed, snaps=snaps).fit()

    val = [store.ckm(int(i)) for i in store.indices("val")]
    table = {"bicubic": Bicubic(), "bicubic-coded": CodedBicubic(), "knn": KNN(k=config["knn_k"])}
    tuning = {}
    for name in ("srresnet", "esrresnet"):
        plain = network(f"{name}-plain", f"{name}-primary", f"{name}-secondary")
        if plain is None:
            continue
        snaps, tables = tune_snaps(plain, val, int(config["factor"]), num_ant=int(config["num_bs_ant"]))
        tuning[name] = {"snaps": [None if s is None else s.to_dict() for s in snaps], "validation": tables}
        print(f"  {name}: snap decoding chosen on the validation city: {tuning[name]['snaps']}")
        table[name] = network(name, f"{name}-primary", f"{name}-secondary", snaps=snaps)
        table[f"{name}-plain"] = plain
    # the paper's reading: the network's output at every cell, measured cells included
    table["esrresnet-raw"] = network("esrresnet-raw", "esrresnet-primary", "esrresnet-secondary",
                                     keep_observed=False)
    ablation = {label: network(label, run) for label, run, _ in ABLATION}
    return ({k: v for k, v in table.items() if v is not None},
            {k: v for k, v in ablation.items() if v is not None}, tuning)


# ----------------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------------

class PathErrors:
    """Squared errors of PGM_l [dB] and PAM_l [deg] pooled over samples, per path (Table I)."""

    def __init__(self, num_paths: int = 2):
        self.sums = {(kind, path): [0.0, 0] for kind in ("pgm", "pam") for path in range(num_paths)}

    def add(self, prediction: xr.Dataset, truth: xr.Dataset) -> None:
        open_cells = ~truth["building"].values
        for path in range(len(self.sums) // 2):
            true_gain = truth["path_gain_db"].values[path]
            exists = open_cells & (true_gain > GAIN_FLOOR_DB)
            error = prediction["path_gain_db"].values[path][exists] - true_gain[exists]
            self._add("pgm", path, error)
            true_az = truth["aoa_az_deg"].values[path]
            pred_az = prediction["aoa_az_deg"].values[path]
            scored = exists & np.isfinite(true_az) & np.isfinite(pred_az)
            self._add("pam", path, angle_difference_deg(pred_az[scored], true_az[scored]))

    def _add(self, kind, path, error):
        entry = self.sums[(kind, path)]
        entry[0] += float(np.sum(np.square(error, dtype=np.float64)))
        entry[1] += int(error.size)

    def rmse(self) -> dict:
        """``{"PGM1": dB, "PAM1": deg, "PGM2": ..., "PAM2": ...}``."""
        num_paths = len(self.sums) // 2
        return {f"{kind.upper()}{path + 1}": self._root_mean(kind, path) for path in range(num_paths)
                for kind in ("pgm", "pam")}

    def _root_mean(self, kind, path) -> float:
        total, count = self.sums[(kind, path)]
        return float(np.sqrt(total / count)) if count else float("nan")


def cosine_map(prediction: xr.Dataset, truth: xr.Dataset, array: AntennaArray) -> np.ndarray:
    """Eq. (9) at every open cell with a true path, ``[num_y, num_x]`` (NaN elsewhere).

    SCMs by eq. (6) from PGM/PAM of paths 1 and 2 with elevation 0 (the paper's 2-D ULA model).
    """
    grid = grid_of(truth)
    scored = ~truth["building"].values & (truth["path_gain_db"].values[0] > GAIN_FLOOR_DB)
    rows, cols = np.nonzero(scored)
    similarity = np.full(grid.shape, np.nan)
    values = []
    for start in range(0, len(rows), SCM_CHUNK):
        r, c = rows[start:start + SCM_CHUNK], cols[start:start + SCM_CHUNK]
        scms = []
        for ckm in (prediction, truth):
            # [path, cells] -> [cells, path]
            gain = ckm["path_gain_db"].values[:2, r, c].T.astype(np.float64)
            az = ckm["aoa_az_deg"].values[:2, r, c].T.astype(np.float64)
            gain = np.where(gain > GAIN_FLOOR_DB, gain, np.nan)
            scms.append(scm_from_paths(gain, az, np.zeros_like(az), array))
        values.append(np.atleast_1d(scm_cosine_similarity(*scms)))
    if values:
        similarity[rows, cols] = np.concatenate(values)
    return similarity


# ----------------------------------------------------------------------------------------------------------
# Link
# ----------------------------------------------------------------------------------------------------------

def link_truth(store: DatasetStore, index: int, cache: Path) -> tuple[xr.Dataset, xr.Dataset]:
    """The true CKM and the true paths of every open cell of sample ``index``, re-traced (cached)."""
    from ckmsim.maps.grid import Grid
    from ckmsim.raytrace.ground_truth import trace_ground_truth
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.load import load_scene

    record = store.records[index]
    folder = cache / record["id"].replace("/", "_")
    if (folder / "done").is_file():
        return read_ckm(folder / "ckm.zarr"), xr.open_zarr(folder / "paths.zarr", consolidated=False).load()
    config = store.manifest["config"]
    settings = RayTracingSettings.from_dict({**config["ray_tracing"], "seed": int(record.get("seed", 0))})
    started = time.perf_counter()
    ckm, paths = trace_ground_truth(load_scene(record["scene"]), record["scene"], Grid.from_dict(record["grid"]),
                                    record["tx_position_m"], settings, int(config.get("num_map_paths", 2)),
                                    progress=False)
    print(f"  re-traced {record['id']} in {time.perf_counter() - started:.0f} s ({paths.sizes['ue']} UEs)")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ckm.attrs.pop("timings_s", None)
    write_ckm(ckm, folder / "ckm.zarr")
    paths.to_zarr(folder / "paths.zarr", mode="w", consolidated=False)
    (folder / "done").write_text("ok")
    return ckm, paths


def link_study(store, indices, methods: dict, config: dict, out: Path) -> dict:
    """Mean rates of beam selection and SCM precoding per method over the re-traced samples' UEs."""
    from ckmsim.link.budget import LinkBudget
    from ckmsim.link.precoding import SCMPrecodingScorer
    from ckmsim.link.score import BeamSelectionScorer
    from ckmsim.metrics.rate_metrics import rate_summary

    array = AntennaArray(num_cols=int(config["num_bs_ant"]))
    degradation = Degradation([Subsample(int(config["factor"]))])
    rates: dict[str, dict[str, list]] = {}

    def add(name, kind, values):
        rates.setdefault(name, {}).setdefault(kind, []).append(values)

    for index in indices:
        truth, paths = link_truth(store, int(index), out / "link_truth")
        beams = BeamSelectionScorer(paths, array, LinkBudget(), config["link"]["oversampling"], precision="single")
        precoding = SCMPrecodingScorer(beams)
        add("perfect CSI", "beam", beams.perfect_csi_rates())
        add("perfect statistics", "precoding", precoding.perfect_statistics_rates())
        observation = degradation(truth)
        for name, ckm in [("ground-truth map", truth)] + [(n, m.predict(observation)) for n, m in methods.items()]:
            add(name, "beam", beams.rates(ckm).rate_bps_hz)
            add(name, "precoding", precoding.rates(ckm).rate_bps_hz)
    perfect = np.concatenate(rates["perfect CSI"]["beam"])
    summary = {}
    for name, kinds in rates.items():
        summary[name] = {kind: rate_summary(np.concatenate(values), perfect) for kind, values in kinds.items()}
    summary["num_ues"] = int(perfect.size)
    summary["samples"] = [store.records[int(i)]["id"] for i in indices]
    return summary


# ----------------------------------------------------------------------------------------------------------
# Figures and report
# ----------------------------------------------------------------------------------------------------------

def figure_maps(truth, predictions: dict, path: Path) -> None:
    """Fig. 8: PGM1, PAM1, PGM2, PAM2 of every method and the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(predictions.items()) + [("ground truth", truth)]
    # one extra thin row holds the two keys: path gain (PGM columns) and azimuth (PAM columns)
    fig = plt.figure(figsize=(11, 2.6 * len(rows) + 0.8))
    grid = fig.add_gridspec(len(rows) + 1, 4, height_ratios=[1.0] * len(rows) + [0.06])
    axes = np.array([[fig.add_subplot(grid[row, col]) for col in range(4)] for row in range(len(rows))])
    images = {}
    for row, (name, ckm) in enumerate(rows):
        for col, (layer, path_index, cmap, limits) in enumerate(
                [("path_gain_db", 0, "viridis", (-160, -60)), ("aoa_az_deg", 0, "twilight", (-180, 180)),
                 ("path_gain_db", 1, "viridis", (-160, -60)), ("aoa_az_deg", 1, "twilight", (-180, 180))]):
            values = np.where(truth["building"].values, np.nan, ckm[layer].values[path_index])
            images[layer] = axes[row, col].imshow(values, origin="lower", cmap=cmap, vmin=limits[0], vmax=limits[1])
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(f"{'PGM' if 'gain' in layer else 'PAM'}{path_index + 1}")
            if col == 0:
                axes[row, col].set_ylabel(name)
    for half, (layer, label) in enumerate((("path_gain_db", "path gain [dB]"),
                                           ("aoa_az_deg", "arrival azimuth [deg]"))):
        bar = fig.colorbar(images[layer], cax=fig.add_subplot(grid[len(rows), 2 * half:2 * half + 2]),
                           orientation="horizontal")
        bar.set_label(label)
    task = predictions[next(iter(predictions))].attrs.get("task", "")
    fig.suptitle(f"{task}: one held-out sample, the strongest two paths (white: buildings, or no such path)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def figure_cosine(maps: dict, threshold: float, path: Path) -> None:
    """Fig. 9: the cosine-similarity map of each method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.2), squeeze=False)
    for ax, (name, similarity) in zip(axes[0], maps.items()):
        image = ax.imshow(similarity, origin="lower", cmap="magma", vmin=0, vmax=1)
        share = np.mean(similarity[np.isfinite(similarity)] > threshold)
        ax.set_title(f"{name}\n{100 * share:.0f} % > {threshold:g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0, -1], fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_ablation(ablation: dict, path: Path) -> None:
    """Fig. 7 as numbers: PGM1 and PAM1 RMSE per input variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(ablation)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, key, unit in ((axes[0], "PGM1", "dB"), (axes[1], "PAM1", "deg")):
        ax.barh(names, [ablation[n][key] for n in names], color="tab:blue")
        ax.set_xlabel(f"{key} RMSE [{unit}]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: dict, path: Path) -> None:
    """``table1.md``: Table I, improvements, ablation, cosine similarity, link."""
    lines = ["# E-SRResNet study on ckmsim data", "",
             f"Dataset `{results['dataset']}`, split `{results['split']}` ({results['num_samples']} held-out samples, "
             f"x{results['factor']} uniform sub-sampling). RMSE over open cells where the true path exists "
             "(PGM in dB, PAM in degrees, wrapped).", "",
             "## Table I", "", "| | " + " | ".join(results["table1"]) + " |",
             "|---|" + "---|" * len(results["table1"])]
    for key in ("PGM1", "PAM1", "PGM2", "PAM2"):
        lines.append(f"| {key} | " + " | ".join(f"{scores[key]:.3f}" for scores in results["table1"].values()) + " |")
    for scene, table in results.get("table1_by_scene", {}).items():
        lines += ["", f"Held-out scene `{scene}`:", "", "| | " + " | ".join(table) + " |", "|---|" + "---|" * len(table)]
        for key in ("PGM1", "PAM1", "PGM2", "PAM2"):
            lines.append(f"| {key} | " + " | ".join(f"{scores[key]:.3f}" for scores in table.values()) + " |")
    for reference in ("bicubic", "knn"):
        if reference in results["table1"]:
            lines += ["", f"Improvement over {reference} (positive = lower RMSE):", ""]
            for name, gains in results["improvement"][reference].items():
                lines.append(f"- {name}: " + ", ".join(f"{k} {v:+.1f} %" for k, v in gains.items()))
    if len(results.get("ablation") or {}) > 1:  # the full input alone is no ablation
        lines += ["", "## Input ablation (primary path, Fig. 7)", "", "| input | PGM1 [dB] | PAM1 [deg] |", "|---|---|---|"]
        lines += [f"| {name} | {s['PGM1']:.3f} | {s['PAM1']:.3f} |" for name, s in results["ablation"].items()]
    lines += ["", f"## SCM cosine similarity (eq. (9), {results['num_bs_ant']}-element ULA)", "",
              f"| method | mean | share > {results['cosine_threshold']:g} |", "|---|---|---|"]
    lines += [f"| {name} | {s['mean']:.3f} | {100 * s['share_above']:.1f} % |" for name, s in results["cosine"].items()]
    if results.get("link"):
        link = results["link"]
        lines += ["", f"## Link score ({link['num_ues']} UEs of {len(link['samples'])} re-traced held-out samples)", "",
                  "| map | DFT beam selection [bit/s/Hz] | % of perfect CSI | SCM eigen-precoding [bit/s/Hz] | % of perfect CSI |",
                  "|---|---|---|---|---|"]
        for name, kinds in link.items():
            if not isinstance(kinds, dict):
                continue
            cells = []
            for kind in ("beam", "precoding"):
                s = kinds.get(kind)
                cells += ["", ""] if s is None else [f"{s['mean_bps_hz']:.3f}", f"{100 * s['fraction_of_perfect_csi']:.1f}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Wall time {results['wall_s']:.0f} s."]
    path.write_text("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------

def run(config: dict) -> dict:
    started = time.perf_counter()
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    store = DatasetStore.open(config["dataset"])
    indices = store.indices(config["split"])
    if not len(indices):
        raise CkmsimError(f"Dataset '{store.path}' has no sample in split {config['split']!r}")
    methods, ablation_methods, tuning = make_methods(config, store)
    array = AntennaArray(num_cols=int(config["num_bs_ant"]))
    degradation = Degradation([Subsample(int(config["factor"]))])
    errors = {name: PathErrors() for name in methods}
    # Table I of each held-out scene too: {scene: {method: PathErrors}}
    scene_errors: dict[str, dict] = {}
    ablation_errors = {name: PathErrors() for name in ablation_methods}
    cosines = {name: [] for name in methods}
    figure_index = int(indices[min(int(config["figure_sample"]), len(indices) - 1)])
    for count, index in enumerate(indices, start=1):
        truth = store.ckm(int(index))
        observation = degradation(truth)
        predictions = {}
        for name, method in methods.items():
            predictions[name] = method.predict(observation)
            errors[name].add(predictions[name], truth)
            scene = Path(store.records[int(index)]["scene"]).parent.name
            scene_errors.setdefault(scene, {}).setdefault(name, PathErrors()).add(predictions[name], truth)
            similarity = cosine_map(predictions[name], truth, array)
            cosines[name].append(similarity[np.isfinite(similarity)])
            if index == figure_index:
                cosines.setdefault("_maps", {})[name] = similarity
        for name, method in ablation_methods.items():
            ablation_errors[name].add(method.predict(observation), truth)
        if index == figure_index:
            figure_maps(truth, predictions, out / "fig_maps.png")
        print(f"  {count}/{len(indices)} {store.records[int(index)]['id']}", flush=True)
    figure_cosine(cosines.pop("_maps"), config["cosine_threshold"], out / "fig_cosine_map.png")

    table1 = {name: e.rmse() for name, e in errors.items()}
    table1_by_scene = {scene: {name: e.rmse() for name, e in per_method.items()}
                       for scene, per_method in scene_errors.items()}
    improvement = {reference: {name: {k: 100.0 * (1.0 - v / table1[reference][k]) for k, v in scores.items()}
                               for name, scores in table1.items() if name != reference}
                   for reference in ("bicubic", "knn") if reference in table1}
    ablation = {name: e.rmse() for name, e in ablation_errors.items()}
    if len(ablation) > 1:  # the full input alone is no ablation
        figure_ablation(ablation, out / "fig_ablation.png")
    cosine = {name: {"mean": float(np.mean(np.concatenate(v))),
                     "share_above": float(np.mean(np.concatenate(v) > config["cosine_threshold"]))}
              for name, v in cosines.items()}
    results = {"dataset": str(config["dataset"]), "split": config["split"], "num_samples": int(len(indices)),
               "factor": config["factor"], "num_bs_ant": config["num_bs_ant"],
               "cosine_threshold": config["cosine_threshold"], "table1": table1,
               "table1_by_scene": table1_by_scene, "improvement": improvement,
               "ablation": ablation, "cosine": cosine, "snap_tuning": tuning, "runs": str(config["runs"])}
    num_link = int(config["link"]["num_samples"])
    if num_link > 0:
        # one sample per held-out tile first, so that the link study sees different streets
        tiles = {}
        for index in indices:
            tiles.setdefault(store.records[int(index)].get("tile_index"), int(index))
        chosen = (list(tiles.values()) + [int(i) for i in indices if int(i) not in tiles.values()])[:num_link]
        results["link"] = link_study(store, chosen, methods, config, out)
    results["wall_s"] = time.perf_counter() - started
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(results, out / "table1.md")
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--dataset")
    parser.add_argument("--runs")
    parser.add_argument("--out")
    parser.add_argument("--link-samples", type=int, default=None)
    parser.add_argument("--factor", type=int, default=None,
                        help="sub-sampling step (the x2 networks run a x4 task as a bicubic cascade)")
    args = parser.parse_args(argv)
    config = load_study_config(args.config, {"dataset": args.dataset, "runs": args.runs, "out": args.out,
                                             "link_samples": args.link_samples, "factor": args.factor})
    results = run(config)
    print((Path(config["out"]) / "table1.md").read_text())
    print(f"wrote {config['out']} in {results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

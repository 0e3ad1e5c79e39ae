"""Look into a dataset: a text summary (``ckmsim dataset info``) and a PNG of one sample (``dataset show``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError


def dataset_info(store: DatasetStore) -> str:
    """Human-readable summary: size and splits, scenes, grid, variables, sampling settings, timings, versions."""
    manifest = store.manifest
    config = manifest["config"]
    records = store.records
    lines = [f"dataset '{manifest['name']}' at {store.path}",
             f"  samples: {len(records)} committed of {manifest['num_planned']} planned"
             + ("" if len(records) == manifest["num_planned"] else " (incomplete: re-run the build to resume)")]
    splits = Counter(r["split"] for r in records)
    lines.append("  splits: " + ", ".join(f"{name} {splits.get(name, 0)}" for name in ("train", "val", "test")))
    if config.get("imported"):
        return "\n".join(lines + _imported_lines(store))
    by_scene = Counter((r["scene"], r["split"]) for r in records)
    for scene in config["scenes"]:
        parts = [f"{split} {by_scene[(scene, split)]}" for split in ("train", "val", "test") if by_scene[(scene, split)]]
        lines.append(f"    {scene}: {', '.join(parts) or 'none yet'}")
    lines.append(f"  grid: {config['tile_cells']}x{config['tile_cells']} cells of {config['cell_size_m']} m at "
                 f"{config['ue_height_m']} m; transmitter {config['tx_height_m']} m high; "
                 + (f"{config['num_map_paths']} paths per cell" if config['num_map_paths']
                    else "gain map only (num_map_paths = 0: no PathSolver, no per-path or LoS layers)"))
    rt = config["ray_tracing"]
    lines.append(f"  ray tracing: {rt['frequency_hz'] / 1e9:g} GHz, depth {rt['max_depth']}, diffraction "
                 f"{rt['diffraction']}, edge diffraction {rt['edge_diffraction']}, {rt['radio_map_samples']:.0e} "
                 f"map rays, " + (f"{rt['path_samples']:.0e} path rays" if config['num_map_paths'] or config.get('csi')
                                  else "no path rays (gain-only)"))
    if config.get("csi"):
        csi = config["csi"]
        lines.append(f"  CSI: {csi['num_ues']} UEs per sample, DL {csi['downlink_hz'] / 1e9:g} GHz / UL "
                     f"{csi['uplink_hz'] / 1e9:g} GHz, {csi['num_subcarriers']} x {csi['subcarrier_spacing_hz'] / 1e3:g} "
                     f"kHz, BS {csi['bs_rows']}x{csi['bs_cols']}, UE {csi['ue_rows']}x{csi['ue_cols']}")
    if records:
        sample = store.samples
        lines.append("  variables:")
        for name, var in sorted(sample.data_vars.items()):
            lines.append(f"    {name:14s} {str(var.dtype):9s} {dict(zip(var.dims, var.shape))}")
        lines.extend(_timing_lines(records))
    builds = manifest.get("builds", [])
    if builds:
        last = builds[-1]
        lines.append(f"  builds: {len(builds)}; last: {last['samples']} samples in {last['wall_s']:.1f} s with "
                     f"{last['workers']} worker(s), Mitsuba variant {last['mitsuba_variant']}")
    versions = ", ".join(f"{k} {v}" for k, v in manifest["versions"].items() if v)
    lines.append(f"  made with ckmsim {manifest['ckmsim_version']}: {versions}")
    return "\n".join(lines)


def _imported_lines(store: DatasetStore) -> list[str]:
    config = store.manifest["config"]
    records = store.records
    lines = [f"  imported from {config['source']}",
             f"  areas: {len({r['area'] for r in records})} (split by area, seed {config['seed']})"]
    if records:
        grid = records[0]["grid"]
        lines.append(f"  grid: {grid['num_y']}x{grid['num_x']} cells of {grid['cell_size_m']} m")
        lines.append("  variables: " + ", ".join(sorted(store.samples.data_vars)))
    return lines


def _timing_lines(records: list[dict]) -> list[str]:
    totals = np.array([r["timings_s"]["sample_total"] for r in records])
    solver = np.array([r["timings_s"]["solver_total"] for r in records])
    return [f"  time per sample: median {np.median(totals):.1f} s (solver calls {np.median(solver):.1f} s); "
            f"total {totals.sum():.0f} s, of which solver calls {100 * solver.sum() / totals.sum():.1f} %"]


def sample_png(store: DatasetStore, index: int, png_path: str | Path) -> Path:
    """PNG of every channel of sample ``index``: gain map, each per-path layer, LoS, building (those the
    store holds: a gain-only store shows gain and building) and, when the dataset has CSI, the downlink CSI
    magnitude of its UEs. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ckm = store.ckm(index)
    panels = [("gain_db", None)]
    panels += [(name, p) for name in ("path_gain_db", "aoa_az_deg", "aoa_el_deg", "aod_az_deg", "aod_el_deg", "toa_s")
               if name in ckm for p in range(ckm.sizes["path"])]
    # A gain-only store (num_map_paths = 0) has neither per-path layers nor LoS: its PNG shows gain and buildings.
    panels += [(name, None) for name in ("los", "building") if name in ckm]
    raw = store.sample(index)
    has_csi = "h_dl" in raw
    count = len(panels) + (1 if has_csi else 0)
    cols = 4
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    x0, x1, y0, y1 = _extent(ckm)
    tx = ckm.attrs.get("bs_position_m")
    for ax, (name, path) in zip(axes.flat, panels):
        values = ckm[name].values if path is None else ckm[name].values[path]
        values = np.where(ckm["building"].values & (name != "building"), np.nan, values.astype(float))
        cmap = "twilight" if name.endswith("az_deg") else "viridis"
        image = ax.imshow(values, origin="lower", extent=(x0, x1, y0, y1), cmap=cmap)
        fig.colorbar(image, ax=ax, shrink=0.8)
        if tx is not None:
            ax.plot(tx[0], tx[1], "r^", markersize=7)
        ax.set_title(name if path is None else f"{name} (path {path})", fontsize=9)
    if has_csi:
        ax = axes.flat[len(panels)]
        # [ue, subcarrier, ue_ant, bs_ant] -> [ue * ue_ant * bs_ant, subcarrier] magnitude in dB
        h = np.abs(raw["h_dl"].values)
        image = ax.imshow(20 * np.log10(np.moveaxis(h, 1, -1).reshape(-1, h.shape[1]) + 1e-30), aspect="auto",
                          cmap="magma", vmin=None)
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title("|h_dl| [dB]: (ue, ue_ant, bs_ant) x subcarrier", fontsize=9)
        ax.set_xlabel("subcarrier")
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    record = store.records[index if index >= 0 else index + len(store)]
    where = "" if tx is None else f", transmitter at ({tx[0]:.0f}, {tx[1]:.0f}, {tx[2]:.0f}) m"
    fig.suptitle(f"{record['id']} ({record['split']}){where}")
    fig.tight_layout()
    png_path = Path(png_path)
    try:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, dpi=90)
    except OSError as err:
        raise CkmsimError(f"Cannot write '{png_path}': {err.strerror or err}") from None
    finally:
        plt.close(fig)
    return png_path


def _extent(ckm) -> tuple[float, float, float, float]:
    half = float(ckm.attrs["grid"]["cell_size_m"]) / 2
    x, y = ckm["x"].values, ckm["y"].values
    return float(x[0] - half), float(x[-1] + half), float(y[0] - half), float(y[-1] + half)

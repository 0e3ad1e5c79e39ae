"""Look into a dataset: a text summary (``ckmsim dataset info``) and a PNG of one sample (``dataset show``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB


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


#: Per-path layers of ``dataset show``, in the order of a path's row.
_PATH_PANELS = ("path_gain_db", "exists", "aoa_az_deg", "aoa_el_deg", "aod_az_deg", "aod_el_deg", "toa_s")


def _toa_scale(toa_s) -> tuple[float, str]:
    """Factor and unit that show times of arrival without a colour-bar offset: ns below 10 us, else us."""
    finite = np.abs(np.asarray(toa_s, dtype=float))
    finite = finite[np.isfinite(finite)]
    return (1e9, "ns") if not finite.size or finite.max() < 1e-5 else (1e6, "us")


def _layer_panel(ax, ckm, name, path, grid, building, tx):
    """Draw one layer of a sample (its physical title, unit and colour bar); boolean layers in two colours."""
    import matplotlib.colors

    from ckmsim.maps.palette import BOOLEAN_LABELS, BUILDING_LAYER_COLORS, LAYER_TITLES
    from ckmsim.maps.plotting import boolean_map, draw_map, no_path_cells

    suffix = "" if path is None else f", path {path}"
    if name in ("los", "building", "exists"):
        values = (ckm["path_gain_db"].values[path] > GAIN_FLOOR_DB) if name == "exists" else ckm[name].values
        if name == "building":
            boolean_map(ax, values, grid, BOOLEAN_LABELS[name], colors=BUILDING_LAYER_COLORS)
        else:
            boolean_map(ax, values, grid, BOOLEAN_LABELS[name], building)
        ax.set_title(("Path exists" if name == "exists" else LAYER_TITLES[name]) + suffix, fontsize=9)
    else:
        values = ckm[name].values if path is None else ckm[name].values[path]
        values = values.astype(float)
        no_path = no_path_cells(ckm["gain_db"].values if path is None else ckm["path_gain_db"].values[path])
        title = LAYER_TITLES[name]
        if name == "toa_s":
            factor, unit = _toa_scale(values[~building & ~no_path])
            values, title = values * factor, f"{title} [{unit}]"
        azimuth = name.endswith("az_deg")
        shown = values[~building & ~no_path & np.isfinite(values)]
        norm = (matplotlib.colors.Normalize(-180.0, 180.0) if azimuth else
                matplotlib.colors.Normalize(*(np.percentile(shown, (0, 100)) if shown.size else (0.0, 1.0))))
        image = draw_map(ax, values, grid, "twilight" if azimuth else "viridis", norm, building,
                         no_path | ~np.isfinite(values))
        bar = ax.figure.colorbar(image, ax=ax, shrink=0.85)
        bar.ax.tick_params(labelsize=7)
        if azimuth:
            bar.set_ticks([-180, -90, 0, 90, 180])
        ax.set_title(title + suffix, fontsize=9)
    if tx is not None:
        ax.plot(tx[0], tx[1], marker="^", color="red", markeredgecolor="k", ms=7, ls="none")
    ax.set_xlabel("x [m]", fontsize=8)
    ax.set_ylabel("y [m]", fontsize=8)


def sample_figure(store: DatasetStore, index: int):
    """The figure of :func:`sample_png`: row 0 the channel gain, LoS and building maps (and the downlink CSI
    magnitude of the sample's UEs when the dataset has CSI), then one row per path: path gain, path exists,
    AoA / AoD azimuth and elevation, time of arrival. Every panel has a physical title with its unit and a
    colour bar; buildings and cells without a path have the colours of :mod:`ckmsim.maps.palette`, keyed
    below the grid. Returns the matplotlib Figure."""
    import matplotlib.figure  # a Figure without pyplot: no backend switch, notebooks keep inline plots

    from ckmsim.maps.ckm import grid_of
    from ckmsim.maps.plotting import cell_class_key

    ckm = store.ckm(index)
    grid = grid_of(ckm)
    building = ckm["building"].values.astype(bool)
    raw = store.sample(index)
    has_csi = "h_dl" in raw
    # A gain-only store (num_map_paths = 0) has neither per-path layers nor LoS: its PNG shows gain and buildings.
    first_row = [("gain_db", None)] + [(name, None) for name in ("los", "building") if name in ckm]
    num_paths = ckm.sizes.get("path", 0) if "path_gain_db" in ckm else 0
    path_rows = [[(name, p) for name in _PATH_PANELS if name == "exists" or name in ckm] for p in range(num_paths)]
    cols = max([len(first_row) + has_csi] + [len(row) for row in path_rows])
    rows = 1 + len(path_rows)
    fig = matplotlib.figure.Figure(figsize=(3.3 * cols, 3.0 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    tx = ckm.attrs.get("bs_position_m")
    for r, row in enumerate([first_row] + path_rows):
        for ax, (name, path) in zip(axes[r], row):
            _layer_panel(ax, ckm, name, path, grid, building, tx)
        for ax in axes[r, len(row):]:
            ax.axis("off")
    if has_csi:
        ax = axes[0, len(first_row)]
        ax.axis("on")
        # [ue, subcarrier, ue_ant, bs_ant] -> [ue * ue_ant * bs_ant, subcarrier] magnitude in dB
        h = np.abs(raw["h_dl"].values)
        image = ax.imshow(20 * np.log10(np.moveaxis(h, 1, -1).reshape(-1, h.shape[1]) + 1e-30), aspect="auto",
                          cmap="magma", interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.85, label="|h_dl| [dB]")
        ax.set_title("Downlink CSI magnitude [dB]", fontsize=9)
        ax.set_xlabel("subcarrier", fontsize=8)
        ax.set_ylabel("(UE, UE antenna, BS antenna)", fontsize=8)
    record = store.records[index if index >= 0 else index + len(store)]
    where = "" if tx is None else f", transmitter at ({tx[0]:.0f}, {tx[1]:.0f}, {tx[2]:.0f}) m"
    fig.legend(handles=cell_class_key(no_path=True, transmitter="transmitter" if tx is not None else None),
               loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(f"{record['id']} ({record['split']}){where}")
    return fig


def sample_png(store: DatasetStore, index: int, png_path: str | Path) -> Path:
    """PNG of every channel of sample ``index`` (:func:`sample_figure`): gain map, each per-path layer, LoS,
    building (those the store holds: a gain-only store shows gain and building) and, when the dataset has
    CSI, the downlink CSI magnitude of its UEs. Returns the PNG path."""
    fig = sample_figure(store, index)
    png_path = Path(png_path)
    try:
        png_path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(png_path, dpi=90)
    except OSError as err:
        raise CkmsimError(f"Cannot write '{png_path}': {err.strerror or err}") from None
    return png_path

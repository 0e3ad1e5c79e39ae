"""PNG figures of a run: map grids (one row per layer), rate CDFs, sweeps and rate against map error.

Every figure draws with the conventions of :mod:`ckmsim.maps.palette`: buildings, cells without a path and
unobserved cells in their own colours with a key, one colour per method and one line style per task, the
same in every figure.
"""

from __future__ import annotations

import math
from pathlib import Path

# Figures are built as matplotlib.figure.Figure objects, not through pyplot: writing PNGs needs no display
# and no global backend switch, and a notebook that calls these functions keeps its inline plots.
import matplotlib
import matplotlib.colors
import matplotlib.figure
import matplotlib.lines
import matplotlib.patches
import matplotlib.ticker
import numpy as np  # noqa: E402

from ckmsim.maps.angles import angle_difference_deg  # noqa: E402
from ckmsim.maps.ckm import grid_of  # noqa: E402
from ckmsim.maps.palette import (BOOLEAN_COLORS, BOOLEAN_LABELS, BUILDING_COLOR, NO_PATH_COLOR,  # noqa: E402
                                 NOT_OBSERVED_COLOR, method_color, task_linestyle, task_marker)
from ckmsim.maps.plotting import (CELL_CLASSES_LABEL, VALUES_LABEL, boolean_key, boolean_map,  # noqa: E402
                                  cell_class_key, draw_map, no_path_cells)
from ckmsim.metrics.rate_metrics import empirical_cdf  # noqa: E402

__all__ = ["BUILDING_COLOR", "CELL_CLASSES_LABEL", "VALUES_LABEL", "plot_task_maps", "task_maps_figure",
           "plot_rate_cdfs", "rate_cdfs_figure", "write_figures", "plot_ue_split", "ue_split_figure", "plot_sweep",
           "sweep_figure", "plot_rate_vs_map_error", "rate_vs_map_error_figure", "plot_deployment", "boolean_map",
           "boolean_key", "draw_map"]

#: Panels per row of :func:`plot_task_maps` before its methods wrap into a further block of rows.
MAX_MAP_COLUMNS = 8
#: Clip of the error rows: errors above it share the top colour (the colour bar's arrow says so).
GAIN_ERROR_CLIP_DB = 30.0
AZIMUTH_ERROR_CLIP_DEG = 90.0
_PANEL_IN = 2.3
#: The observed-cells map of the azimuth-error row: (not observed, observed)
OBSERVED_COLORS = (NOT_OBSERVED_COLOR, "black")
OBSERVED_LABELS = ("not observed", "observed cell")


def _save(fig, path, dpi: int) -> None:
    """Write ``fig`` to the PNG ``path`` and free it."""
    fig.savefig(path, dpi=dpi)


def _subplots(nrows: int = 1, ncols: int = 1, figsize=None, layout=None, **grid):
    """``pyplot.subplots`` without pyplot: a new Figure and its axes (``grid``: squeeze, sharex, sharey)."""
    fig = matplotlib.figure.Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, **grid)


def _label_axes(ax, y_label: bool = True):
    ax.set_xlabel("x [m]", fontsize=7)
    if y_label:
        ax.set_ylabel("y [m]", fontsize=7)


def _sparse_view(observation, name, path=None):
    """The observed layer on the full grid (NaN where unmeasured)."""
    layer = observation.values[name]
    return np.asarray((layer.sel(path=path) if path is not None else layer).values, dtype=float)


def _gain_range_db(gain_db, covered):
    """1-99 % of the covered cells' gains: the colour range of the gain row."""
    finite = gain_db[covered]
    return (float(np.percentile(finite, 1)), float(np.percentile(finite, 99))) if finite.size else (-160.0, -60.0)


def _map_rows(truth, observation, predictions):
    """The layer rows of :func:`plot_task_maps`: (title, colour map, norm, colour bar label, extend, panels),
    each panel ``(title, values, no_path, not_observed)`` or a string (a special panel, or why it is empty).
    A truth without per-path azimuths (a gain-only map) has the two gain rows only."""
    gain = truth["gain_db"].values.astype(float)
    building = truth["building"].values
    truth_no_path = no_path_cells(gain)
    gain_norm = matplotlib.colors.Normalize(*_gain_range_db(gain, ~building & ~truth_no_path))
    observed_gain = _sparse_view(observation, "gain_db")
    not_observed = ~np.asarray(observation.observed, dtype=bool)
    gain_row, error_row, az_row, az_error_row = [], [], [], []
    angles = "aoa_az_deg" in truth and "path_gain_db" in truth
    if angles:
        true_az = truth["aoa_az_deg"].sel(path=0).values.astype(float)
        true_az_no_path = ~np.isfinite(true_az) | no_path_cells(truth["path_gain_db"].sel(path=0).values)
    gain_row.append(("ground truth", gain, truth_no_path, None))
    gain_row.append((f"observed ({int((~not_observed & ~building).sum())} cells)", observed_gain,
                     no_path_cells(observed_gain) & ~not_observed, not_observed))
    error_row += ["los" if "los" in truth else "", "" if angles else "observed"]
    if angles:
        observed_az = _sparse_view(observation, "aoa_az_deg", path=0) if "aoa_az_deg" in observation.values else None
        az_row.append(("ground truth", true_az, true_az_no_path, None))
        az_row.append(("observed", observed_az, true_az_no_path & ~not_observed, not_observed)
                      if observed_az is not None else "no azimuth observed")
        az_error_row += ["observed", ""]
    for name, prediction in predictions.items():
        predicted = prediction["gain_db"].values.astype(float)
        gain_row.append((name, predicted, no_path_cells(predicted), None))
        error_row.append((name, np.abs(predicted - gain), truth_no_path, None))
        if not angles:
            continue
        if "aoa_az_deg" not in prediction:
            az_row.append(f"{name}:\nno angles predicted")
            az_error_row.append(f"{name}:\nno angles predicted")
            continue
        az = prediction["aoa_az_deg"].sel(path=0).values.astype(float)
        az_no_path = ~np.isfinite(az) | no_path_cells(prediction["path_gain_db"].sel(path=0).values)
        az_row.append((name, az, az_no_path, None))
        # wrapped to (-180, 180] before the magnitude: 179 and -179 deg are 2 deg apart
        az_error_row.append((name, np.abs(angle_difference_deg(az, true_az)), true_az_no_path | az_no_path, None))
    twilight = matplotlib.colormaps.get_cmap("twilight")
    magma = matplotlib.colormaps.get_cmap("magma")
    rows = [("Channel gain [dB]", matplotlib.colormaps.get_cmap("viridis"), gain_norm, "channel gain [dB]", "both", gain_row),
            ("|gain error| [dB]: |prediction - truth| where the truth has a path", magma,
             matplotlib.colors.Normalize(0.0, GAIN_ERROR_CLIP_DB), "|gain error| [dB]", "max", error_row)]
    return rows if not angles else rows + [
            ("Strongest-path AoA azimuth [deg] (cyclic colour map)", twilight,
             matplotlib.colors.Normalize(-180.0, 180.0), "AoA azimuth [deg]", "neither", az_row),
            ("|AoA azimuth error| [deg], wrapped to [0, 180]", magma,
             matplotlib.colors.Normalize(0.0, AZIMUTH_ERROR_CLIP_DEG), "|azimuth error| [deg]", "max", az_error_row)]


def _blocks(num_methods: int, max_columns: int) -> list[range]:
    """Methods of each block of rows: as even as possible, at most ``max_columns - 2`` per block."""
    per_block = max(1, max_columns - 2)
    num_blocks = max(1, math.ceil(num_methods / per_block))
    size = math.ceil(num_methods / num_blocks) if num_methods else 0
    return [range(start, min(start + size, num_methods)) for start in range(0, max(num_methods, 1), max(size, 1))]


def _draw_panel(ax, panel, truth, observation, grid, cmap, norm, first: bool, first_method: bool, bs=None):
    """One panel of :func:`task_maps_figure`: a map of the row's layer (returns its value image), the truth's
    LoS map (``"los"``), the observed cells (``"observed"``) or a note (any other string; None returned)."""
    building = truth["building"].values
    if panel in ("los", "observed"):
        values, labels, colors, title = ((truth["los"].values, BOOLEAN_LABELS["los"], BOOLEAN_COLORS,
                                          "truth: strongest path LoS / NLoS") if panel == "los" else
                                         (observation.observed, OBSERVED_LABELS, OBSERVED_COLORS,
                                          "cells the task observed"))
        boolean_map(ax, values, grid, labels, building, colorbar=False, colors=colors)
        ax.set_title(title, fontsize=8)
        _label_axes(ax)
        return None
    if isinstance(panel, str):
        ax.axis("off")
        if panel:
            ax.text(0.5, 0.5, panel, ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.3")
        return None
    title, values, no_path, not_observed = panel
    image = draw_map(ax, values, grid, cmap, norm, building, no_path, not_observed)
    ax.set_title(title, fontsize=9)
    # the first method column is labelled in every row, so that the rows' columns align
    _label_axes(ax, y_label=first or first_method)
    if first_method:
        ax.tick_params(labelleft=True)
    if bs is not None:
        ax.plot(bs[0], bs[1], marker="^", color="red", markeredgecolor="k", ms=6, ls="none")
    return image


def task_maps_figure(truth, observation, predictions: dict,
                     max_columns: int = MAX_MAP_COLUMNS) -> matplotlib.figure.Figure:
    """The maps of one task on a grid with one row per layer: channel gain, |gain error|, strongest-path AoA
    azimuth and |azimuth error|; columns: ground truth, observation, then one per method (labelled).

    Each row shares one colour scale (and its colour bar) across the methods; buildings, cells without a path
    (the -250 dB floor, or no ray) and unobserved cells have their own colours, in the key below the grid.
    More methods than ``max_columns - 2`` wrap into a further block of rows (the truth and observation
    repeated). The gain-error row starts with the truth's LoS map, the azimuth-error row with the cells the
    task observed (the lattice every method keeps exactly: the chequer pattern of the error maps), both in
    two colours. A gain-only truth (no ``aoa_az_deg``) has the two gain rows only.

    Input
    -----
    truth : CKM of the ground truth (``gain_db``, ``building``; ``path_gain_db``, ``aoa_az_deg``, ``los``)
    observation : Observation of the task
    predictions : {method name: CKM}
    """
    grid = grid_of(truth)
    rows = _map_rows(truth, observation, predictions)
    names = list(predictions)
    blocks = _blocks(len(names), max_columns)
    cols = 2 + max(len(b) for b in blocks)
    layers = len(rows)
    fig = matplotlib.figure.Figure(figsize=(_PANEL_IN * cols + 1.4, 2.45 * layers * len(blocks) + 0.8), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(layers * len(blocks), 1))
    bs = truth.attrs.get("bs_position_m")
    for b, block in enumerate(blocks):
        columns = [0, 1] + [2 + i for i in block]
        for r, (row_title, cmap, norm, bar_label, extend, panels) in enumerate(rows):
            subfig = subfigs[layers * b + r]
            axes = subfig.subplots(1, cols, sharex=True, sharey=True, squeeze=False)[0]
            images = []
            for index, (ax, column) in enumerate(zip(axes, columns)):
                image = _draw_panel(ax, panels[column], truth, observation, grid, cmap, norm, first=index == 0,
                                    first_method=index == 2, bs=bs if r == 0 else None)
                if image is not None:
                    images.append(image)
            for ax in axes[len(columns):]:
                ax.axis("off")
            if images:
                colorbar = subfig.colorbar(images[0], ax=list(axes), extend=extend, shrink=0.9, pad=0.01,
                                           aspect=15)
                colorbar.set_label(bar_label, fontsize=8)
                colorbar.ax.tick_params(labelsize=7)
                if norm.vmin == -180.0 and norm.vmax == 180.0:
                    colorbar.set_ticks([-180, -90, 0, 90, 180])
            subfig.suptitle(row_title, fontsize=10, x=0.005, ha="left", fontweight="bold")
    handles = (cell_class_key(no_path=True, not_observed=True) + boolean_key(OBSERVED_LABELS, OBSERVED_COLORS)[1:]
               + boolean_key(BOOLEAN_LABELS["los"]))
    handles += cell_class_key(no_path=False, transmitter="BS")[1:] if bs is not None else []
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle(f"{truth.attrs.get('scene', '')}: task {observation.task}", fontsize=12)
    return fig


def plot_task_maps(path: Path, truth, observation, predictions: dict, max_columns: int = MAX_MAP_COLUMNS) -> None:
    """Write :func:`task_maps_figure` to the PNG ``path``."""
    _save(task_maps_figure(truth, observation, predictions, max_columns), path, dpi=100)


def _reference_styles(bound_label: str, references: dict | None) -> list[tuple[str, dict]]:
    """Line styles of the bound, the ground-truth map and the map-free references (black and grey)."""
    styles = [(bound_label, dict(color="k", lw=2)), ("ground-truth map", dict(color="k", ls="--", lw=1.5))]
    styles += [(label, dict(color="0.5", ls=(":", "-.")[index % 2], lw=1.5))
               for index, label in enumerate(references or {})]
    return styles


def rate_cdfs_figure(panels: dict, title: str = "", bound_label: str = "perfect CSI") -> matplotlib.figure.Figure:
    """CDFs of per-UE rates, one panel per task, each over that task's own UEs; one key for all panels.

    ``panels`` maps a panel title (a task) to ``(bound, ground_truth_map, references, methods)``: the score's
    own bound and the ground-truth map's rates ``[n]``, map-free references (label -> ``[n]``, grey) and the
    task's methods (label -> ``[n]``), all over the same ``n`` UEs. Each method has its colour of
    :func:`ckmsim.maps.palette.method_color` (the same in every figure); each task has its own panel, so the
    methods' lines are solid and dashes stay the ground-truth map's.
    """
    num = max(1, len(panels))
    fig, axes = _subplots(1, num, figsize=(4.6 * num + 2.4, 4.4), squeeze=False, sharey=True,
                             layout="constrained")
    key = {}
    for ax, (panel, (bound, ground_truth_map, references, methods)) in zip(axes[0], panels.items()):
        curves = [(label, values, style) for (label, style), values in
                  zip(_reference_styles(bound_label, references),
                      [bound, ground_truth_map, *(references or {}).values()])]
        curves += [(label, values, dict(color=method_color(label), lw=1.2)) for label, values in methods.items()]
        for label, values, style in curves:
            if len(values):
                (line,) = ax.plot(*empirical_cdf(values), label=label, **style)
                key.setdefault(label, line)
        ax.set_xlabel("achievable rate [bit/s/Hz]")
        ax.set_title(f"{panel} ({len(bound)} UEs)", fontsize=9)
        ax.grid(alpha=0.3)
        if not len(bound):
            ax.text(0.5, 0.5, "the task measured every test UE", ha="center", transform=ax.transAxes, fontsize=8)
    axes[0, 0].set_ylabel("CDF over UEs")
    if key:
        fig.legend(list(key.values()), list(key), loc="outside right upper", fontsize=7,
                   title="bound, references and methods", title_fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_rate_cdfs(path: Path, panels: dict, title: str = "", bound_label: str = "perfect CSI") -> None:
    """Write :func:`rate_cdfs_figure` to the PNG ``path``."""
    _save(rate_cdfs_figure(panels, title, bound_label), path, dpi=120)


def write_figures(out: Path, truth, observations: dict, predictions: dict, rate_scores: dict,
                  held_out: dict) -> list[Path]:
    """Write ``maps_<task>.png`` per task and one rate CDF per rate score; returns the paths written.

    ``rate_scores`` maps a score name (``"beam selection"``) to ``(bound, ground_truth_map, references,
    rates)``: the score's own bound and the ground-truth map's rates ``[num_ue]``, map-free references (label
    -> ``[num_ue]``) and ``{(method, task): [num_ue]}``. ``held_out`` maps each task to its ``[num_ue]`` bool
    headline UEs (test UEs the task did not measure), over which each task's panel is drawn. The figure is
    ``rate_cdf_<name in lower case with underscores>.png``.
    """
    written = []
    for task, observation in observations.items():
        per_task = {name: pred for (name, t), pred in predictions.items() if t == task}
        path = out / f"maps_{task}.png"
        plot_task_maps(path, truth, observation, per_task)
        written.append(path)
    for score, (bound, ground_truth_rates, references, rates) in rate_scores.items():
        path = out / f"rate_cdf_{score.replace(' ', '_').lower()}.png"
        panels = {}
        for task, mask in held_out.items():
            methods = {name: values[mask] for (name, t), values in rates.items() if t == task}
            title = f"task {task}, test UEs it did not measure"
            panels[title] = (bound[mask], ground_truth_rates[mask],
                             {k: v[mask] for k, v in (references or {}).items()}, methods)
        plot_rate_cdfs(path, panels, title=f"rate with {score} from the map (pilots paid)",
                       bound_label=BOUND_LABELS.get(score, "perfect CSI"))
        written.append(path)
    return written


def ue_split_figure(truth, ue_cells, ue_sets: dict) -> matplotlib.figure.Figure:
    """Which UEs calibrate, which are scored and which are the headline, one panel per task.

    ``ue_cells`` is ``(rows, cols)`` of the scored UEs; ``ue_sets`` maps a task to its
    :class:`~ckmsim.eval.scoring.UeSets`.
    """
    grid = grid_of(truth)
    building = truth["building"].values
    rows, cols = ue_cells
    set_colors = ("tab:blue", "tab:orange", "tab:green")
    cmap = matplotlib.colors.ListedColormap(list(set_colors))
    norm = matplotlib.colors.BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
    num = max(1, len(ue_sets))
    fig, axes = _subplots(1, num, figsize=(4.4 * num, 4.8), squeeze=False, layout="constrained")
    for ax, (task, sets) in zip(axes[0], ue_sets.items()):
        # 0: calibration, 1: test UE the task measured, 2: headline (test UE the task did not measure)
        label = np.full(grid.shape, np.nan)
        label[rows, cols] = np.where(sets.test, np.where(sets.held_out, 2.0, 1.0), 0.0)
        unscored = ~building & np.isnan(label)
        draw_map(ax, label, grid, cmap, norm, building, no_path=unscored)
        ax.set_title(f"task {task}: {int(sets.held_out.sum())} headline UEs", fontsize=9)
        _label_axes(ax)
    handles = [matplotlib.patches.Patch(facecolor=c, edgecolor="0.3", label=t) for c, t in
               zip((*set_colors, BUILDING_COLOR, NO_PATH_COLOR),
                   ("calibration UE (margins only)", "test UE, measured by the task",
                    "test UE, not measured (headline)", "building", "open cell, not scored (no path)"))]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"{truth.attrs.get('scene', '')}: calibration / test split by spatial blocks", fontsize=10)
    return fig


def plot_ue_split(path: Path, truth, ue_cells, ue_sets: dict) -> None:
    """Write :func:`ue_split_figure` to the PNG ``path``."""
    _save(ue_split_figure(truth, ue_cells, ue_sets), path, dpi=110)


#: Legend label of each rate score's own bound.
BOUND_LABELS = {"beam selection": "perfect CSI (best DFT beam)", "link adaptation": "perfect CSI (best DFT beam)",
                "SCM precoding": "perfect CSI eigen-beamforming (MRT)", "CSI beamforming": "perfect CSI (best DFT pair)"}


def _split_label(label: str) -> tuple[str, str | None]:
    """``"bicubic sr_x2"`` -> ``("bicubic", "sr_x2")``; a label without a task -> ``(label, None)``."""
    name, _, task = str(label).partition(" ")
    return name, (task or None)


def sweep_figure(x, curves: dict, xlabel: str, title: str, log_x: bool = False) -> matplotlib.figure.Figure:
    """Mean rate against a swept parameter: references in black, each ``"<method> <task>"`` curve in its
    method's colour and its task's line style (:mod:`ckmsim.maps.palette`), with one key per dimension."""
    fig, ax = _subplots(figsize=(8.4, 4.6), layout="constrained")
    methods, tasks = {}, {}
    for label, values in curves.items():
        if label == "perfect_csi":
            ax.plot(x, values, color="k", lw=2, label="perfect CSI")
            continue
        if label == "ground_truth_map":
            ax.plot(x, values, color="k", ls="--", lw=1.5, label="ground-truth map")
            continue
        name, task = _split_label(label)
        style = task_linestyle(task) if task else "-"
        ax.plot(x, values, color=method_color(name), ls=style, lw=1.2, marker=".")
        methods.setdefault(name, method_color(name))
        if task:
            tasks.setdefault(task, style)
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(v) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean rate [bit/s/Hz]")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    references = ax.legend(fontsize=7, loc="upper left", title="references", title_fontsize=7)
    ax.add_artist(references)
    handles = [matplotlib.lines.Line2D([], [], color=color, lw=2, label=name) for name, color in methods.items()]
    handles += [matplotlib.lines.Line2D([], [], color="0.3", ls=style, lw=1.2, label=f"task {task}")
                for task, style in tasks.items()]
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=7,
                   title="colour: method\nline style: task", title_fontsize=7)
    return fig


def plot_sweep(path: Path, x, curves: dict, xlabel: str, title: str, log_x: bool = False) -> None:
    """Write :func:`sweep_figure` to the PNG ``path``."""
    _save(sweep_figure(x, curves, xlabel, title, log_x), path, dpi=120)


#: The scores of :func:`plot_rate_vs_map_error`: results-record key, panel title.
RATE_VS_ERROR_SCORES = (("rate", "beam selection"), ("rate_adaptation", "link adaptation"),
                        ("rate_csi_beamforming", "CSI beamforming"))
_SCENE_FILLS = ("full", "none", "left", "bottom", "right", "top")


def rate_vs_map_error_figure(studies: list[dict]) -> matplotlib.figure.Figure:
    """Every (scene, method, task): gain RMSE over covered cells against the share of the score's own
    perfect-CSI bound, one panel per score (beam selection, link adaptation, CSI beamforming).

    Colour: method (:func:`~ckmsim.maps.palette.method_color`); marker: task; fill: scene (filled for the
    first, open for the second, half-filled after). The three keys sit beside the panels; no text labels.
    """
    panels = [(key, title) for key, title in RATE_VS_ERROR_SCORES
              if any(record.get(key) is not None for study in studies for record in study["methods"])]
    panels = panels or list(RATE_VS_ERROR_SCORES[:1])
    fig, axes = _subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.6, 4.4), squeeze=False, sharey=True,
                             layout="constrained")
    methods, tasks, scenes = {}, {}, {}
    for index, study in enumerate(studies):
        scene = str(study.get("label") or study.get("scene", f"study {index}"))
        fill = scenes.setdefault(scene, _SCENE_FILLS[index % len(_SCENE_FILLS)])
        for record in study["methods"]:
            name, task = record["name"], record["task"]
            color, marker = method_color(name), task_marker(task)
            methods.setdefault(name, color)
            tasks.setdefault(task, marker)
            for ax, (key, _title) in zip(axes[0], panels):
                if record.get(key) is None:
                    continue
                ax.plot(record["map"]["covered_gain_rmse_db"], 100 * record[key]["fraction_of_perfect_csi"],
                        ls="none", marker=marker, ms=6, color=color, markeredgecolor=color, fillstyle=fill,
                        alpha=0.9)
    for ax, (_key, title) in zip(axes[0], panels):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("gain RMSE over covered cells [dB]")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set_ylabel("% of the score's own perfect-CSI bound\n(test UEs the task did not measure)")
    handles = [matplotlib.lines.Line2D([], [], ls="none", marker="o", color=c, label=n) for n, c in methods.items()]
    handles += [matplotlib.lines.Line2D([], [], ls="none", marker=m, color="0.3", label=f"task {t}")
                for t, m in tasks.items()]
    handles += [matplotlib.lines.Line2D([], [], ls="none", marker="o", color="0.3", fillstyle=f, label=f"scene {s}")
                for s, f in scenes.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7,
               title="colour: method\nmarker: task\nfill: scene", title_fontsize=7)
    return fig


def plot_rate_vs_map_error(path: Path, studies: list[dict]) -> None:
    """Write :func:`rate_vs_map_error_figure` to the PNG ``path``."""
    _save(rate_vs_map_error_figure(studies), path, dpi=120)


def plot_deployment(path: Path, deployment: dict, title: str) -> None:
    """Share of the oracle site's objective reached by each method's choice, and a random site's."""
    names = [n for n in deployment["outcomes"] if n != "oracle"]
    values = [100 * deployment["outcomes"][n]["fraction_of_oracle"] for n in names]
    fig, ax = _subplots(figsize=(6.4, 3.8))
    ax.bar(range(len(names)), values, color=["0.6" if n == "random_site" else method_color(n) for n in names])
    ax.axhline(100, color="k", lw=1)
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(f"% of the oracle site's {deployment['metric'].replace('_', ' ')}")
    ax.set_ylim(min(values + [90]) - 5, 101)
    ax.set_title(f"{title}: AP site chosen from predicted maps ({deployment['task']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)

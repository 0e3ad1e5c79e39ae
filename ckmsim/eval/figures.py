"""PNG figures of a run: maps side by side, error maps, angle maps and rate CDFs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.patches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ckmsim.maps.angles import angle_difference_deg  # noqa: E402
from ckmsim.maps.ckm import grid_of  # noqa: E402
from ckmsim.metrics.rate_metrics import empirical_cdf  # noqa: E402

BUILDING_COLOR = "0.55"


def _show(ax, values, grid, title, cmap, vmin, vmax, building):
    """One map panel with buildings in grey; returns the image for a colour bar."""
    x0, x1, y0, y1 = grid.bounds_m
    ax.imshow(np.where(building, 1.0, np.nan), origin="lower", extent=(x0, x1, y0, y1),
              cmap=matplotlib.colors.ListedColormap([BUILDING_COLOR]), vmin=0, vmax=1)
    image = ax.imshow(np.where(building, np.nan, values), origin="lower", extent=(x0, x1, y0, y1),
                      cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    return image


def _sparse_view(observation, name, path=None):
    """The observed layer on the full grid (NaN where unmeasured)."""
    layer = observation.values[name]
    return (layer.sel(path=path) if path is not None else layer).values


def plot_task_maps(path: Path, truth, observation, predictions: dict) -> None:
    """Gain maps (top), absolute gain errors (middle) and strongest-path azimuth (bottom) for one task."""
    grid = grid_of(truth)
    building = truth["building"].values
    names = list(predictions)
    cols = 2 + len(names)
    fig, axes = plt.subplots(3, cols, figsize=(3.0 * cols, 9.0), squeeze=False, layout="constrained")
    gain = truth["gain_db"].values
    finite = gain[np.isfinite(gain) & (gain > -200)]
    vmin, vmax = (np.percentile(finite, 1), np.percentile(finite, 99)) if finite.size else (-160, -60)
    images = [_show(axes[0, 0], gain, grid, "ground truth gain [dB]", "viridis", vmin, vmax, building),
              _show(axes[0, 1], _sparse_view(observation, "gain_db"), grid, f"observed ({observation.task})",
                    "viridis", vmin, vmax, building)]
    for col, name in enumerate(names, start=2):
        images.append(_show(axes[0, col], predictions[name]["gain_db"].values, grid, name, "viridis", vmin,
                            vmax, building))
        error = np.abs(predictions[name]["gain_db"].values - gain)
        gain_error_image = _show(axes[1, col], error, grid, f"|error| {name} [dB]", "magma", 0, 30, building)
        if "aoa_az_deg" not in predictions[name]:
            axes[2, col].axis("off")
            axes[2, col].set_title(f"{name}: no angles predicted", fontsize=8)
            continue
        az_error = np.abs(angle_difference_deg(predictions[name]["aoa_az_deg"].sel(path=0).values,
                                               truth["aoa_az_deg"].sel(path=0).values))
        angle_error_image = _show(axes[2, col], az_error, grid, f"|AoA az error| {name} [deg]", "magma", 0, 90,
                                  building)
    _show(axes[2, 0], truth["aoa_az_deg"].sel(path=0).values, grid, "strongest-path AoA az [deg]",
          "twilight", -180, 180, building)
    _show(axes[2, 1], _sparse_view(observation, "aoa_az_deg", path=0), grid, "observed AoA az [deg]",
          "twilight", -180, 180, building)
    _show(axes[1, 0], truth["los"].values.astype(float), grid, "LoS (yellow) of strongest path", "cividis",
          0, 1, building)
    axes[1, 1].axis("off")
    fig.colorbar(images[0], ax=axes[0, -1], label="gain [dB]")
    if names:
        fig.colorbar(gain_error_image, ax=axes[1, -1], label="|gain error| [dB] (clipped at 30)")
    if any("aoa_az_deg" in p for p in predictions.values()):
        fig.colorbar(angle_error_image, ax=axes[2, -1], label="|azimuth error| [deg] (clipped at 90)")
    for row in range(3):
        axes[row, 0].set_ylabel("y [m]", fontsize=7)
    for col in range(cols):
        axes[2, col].set_xlabel("x [m]", fontsize=7)
    fig.suptitle(f"{truth.attrs.get('scene', '')}: task {observation.task}", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rate_cdfs(path: Path, panels: dict, title: str = "", bound_label: str = "perfect CSI") -> None:
    """CDFs of per-UE rates, one panel per task, each over that task's own UEs.

    ``panels`` maps a panel title (a task) to ``(bound, ground_truth_map, references, methods)``: the score's
    own bound and the ground-truth map's rates ``[n]``, map-free references (label -> ``[n]``, grey) and the
    task's methods (label -> ``[n]``), all over the same ``n`` UEs.
    """
    num = max(1, len(panels))
    fig, axes = plt.subplots(1, num, figsize=(5.2 * num, 4.4), squeeze=False, sharey=True)
    for ax, (panel, (bound, ground_truth_map, references, methods)) in zip(axes[0], panels.items()):
        curves = [(bound_label, bound, dict(color="k", lw=2)),
                  ("ground-truth map", ground_truth_map, dict(color="k", ls="--", lw=1.5))]
        curves += [(label, values, dict(color="0.5", ls=(":", "-.")[index % 2], lw=1.5))
                   for index, (label, values) in enumerate((references or {}).items())]
        curves += [(label, values, dict(lw=1)) for label, values in methods.items()]
        for label, values, style in curves:
            if len(values):
                ax.plot(*empirical_cdf(values), label=label, **style)
        ax.set_xlabel("achievable rate [bit/s/Hz]")
        ax.set_title(f"{panel} ({len(bound)} UEs)", fontsize=9)
        ax.grid(alpha=0.3)
        if len(bound):
            ax.legend(fontsize=6, ncol=2)
        else:
            ax.text(0.5, 0.5, "the task measured every test UE", ha="center", transform=ax.transAxes, fontsize=8)
    axes[0, 0].set_ylabel("CDF over UEs")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
            panels[f"task {task}, test UEs it did not measure"] = (
                bound[mask], ground_truth_rates[mask], {k: v[mask] for k, v in (references or {}).items()}, methods)
        plot_rate_cdfs(path, panels, title=f"rate with {score} from the map (pilots paid)",
                       bound_label=BOUND_LABELS.get(score, "perfect CSI"))
        written.append(path)
    return written


def plot_ue_split(path: Path, truth, ue_cells, ue_sets: dict) -> None:
    """Which UEs calibrate, which are scored and which are the headline, one panel per task.

    ``ue_cells`` is ``(rows, cols)`` of the scored UEs; ``ue_sets`` maps a task to its
    :class:`~ckmsim.eval.scoring.UeSets`.
    """
    grid = grid_of(truth)
    building = truth["building"].values
    rows, cols = ue_cells
    colors = matplotlib.colors.ListedColormap(["tab:blue", "tab:orange", "tab:green"])
    fig, axes = plt.subplots(1, max(1, len(ue_sets)), figsize=(4.4 * max(1, len(ue_sets)), 4.4), squeeze=False)
    for ax, (task, sets) in zip(axes[0], ue_sets.items()):
        # 0: calibration, 1: test UE the task measured, 2: headline (test UE the task did not measure)
        label = np.full(grid.shape, np.nan)
        label[rows, cols] = np.where(sets.test, np.where(sets.held_out, 2.0, 1.0), 0.0)
        _show(ax, label, grid, f"task {task}: {int(sets.held_out.sum())} headline UEs", colors, -0.5, 2.5, building)
        ax.set_xlabel("x [m]", fontsize=7)
        ax.set_ylabel("y [m]", fontsize=7)
    handles = [matplotlib.patches.Patch(color=c, label=t) for c, t in
               zip(("tab:blue", "tab:orange", "tab:green", BUILDING_COLOR),
                   ("calibration UE (margins only)", "test UE, measured by the task", "test UE, not measured (headline)",
                    "building"))]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=7)
    fig.suptitle(f"{truth.attrs.get('scene', '')}: calibration / test split by spatial blocks", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: Legend label of each rate score's own bound.
BOUND_LABELS = {"beam selection": "perfect CSI (best DFT beam)", "link adaptation": "perfect CSI (best DFT beam)",
                "SCM precoding": "perfect CSI eigen-beamforming (MRT)", "CSI beamforming": "perfect CSI (best DFT pair)"}


def plot_sweep(path: Path, x, curves: dict, xlabel: str, title: str, log_x: bool = False) -> None:
    """Mean rate against a swept parameter: references in black, each (method, task) in colour."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, values in curves.items():
        style = (dict(color="k", lw=2) if label == "perfect_csi"
                 else dict(color="k", ls="--", lw=1.5) if label == "ground_truth_map" else dict(lw=1, marker="."))
        ax.plot(x, values, label=label.replace("_", " "), **style)
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(v) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean rate [bit/s/Hz]")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rate_vs_map_error(path: Path, studies: list[dict]) -> None:
    """Every (scene, method, task): gain RMSE over covered cells against the share of the perfect-CSI rate,
    for beam selection (filled blue), link adaptation (open) and CSI beamforming (small green; share of
    perfect-CSI beamforming)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    markers = "osD^v<>ph*"
    for index, study in enumerate(studies):
        for record in study["methods"]:
            x = record["map"]["covered_gain_rmse_db"]
            marker = markers[index % len(markers)]
            if record["rate"] is not None:
                ax.scatter(x, 100 * record["rate"]["fraction_of_perfect_csi"], marker=marker, color="C0", s=18)
            ax.scatter(x, 100 * record["rate_adaptation"]["fraction_of_perfect_csi"], marker=marker,
                       facecolors="none", edgecolors="C1", s=18)
            if record.get("rate_csi_beamforming") is not None:
                ax.scatter(x, 100 * record["rate_csi_beamforming"]["fraction_of_perfect_csi"], marker=marker,
                           color="C2", s=10)
            ax.annotate(f"{record['name']} {record['task']}", (x, 100 * record["rate_adaptation"]["fraction_of_perfect_csi"]),
                        fontsize=5, alpha=0.7)
    ax.scatter([], [], color="C0", label="beam selection")
    ax.scatter([], [], facecolors="none", edgecolors="C1", label="link adaptation")
    ax.scatter([], [], color="C2", s=10, label="CSI beamforming")
    ax.set_xscale("log")
    ax.set_xlabel("gain RMSE over covered cells [dB]")
    ax.set_ylabel("% of the score's own perfect-CSI bound\n(test UEs the task did not measure)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_deployment(path: Path, deployment: dict, title: str) -> None:
    """Share of the oracle site's objective reached by each method's choice, and a random site's."""
    names = [n for n in deployment["outcomes"] if n != "oracle"]
    values = [100 * deployment["outcomes"][n]["fraction_of_oracle"] for n in names]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.bar(range(len(names)), values, color=["0.6" if n == "random_site" else "C0" for n in names])
    ax.axhline(100, color="k", lw=1)
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel(f"% of the oracle site's {deployment['metric'].replace('_', ' ')}")
    ax.set_ylim(min(values + [90]) - 5, 101)
    ax.set_title(f"{title}: AP site chosen from predicted maps ({deployment['task']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

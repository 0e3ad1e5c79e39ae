"""PNG figures of a run: maps side by side, error maps, angle maps and rate CDFs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
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
    fig.suptitle(f"{truth.attrs.get('scene', '')}: task {observation.task}", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_rate_cdfs(path: Path, perfect, ground_truth_map, rates: dict, title: str = "") -> None:
    """CDF of per-UE rates for the references and every (method, task)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, values, style in [("perfect CSI", perfect, dict(color="k", lw=2)),
                                 ("ground-truth map", ground_truth_map, dict(color="k", ls="--", lw=1.5))]:
        ax.plot(*empirical_cdf(values), label=label, **style)
    for (name, task), values in rates.items():
        ax.plot(*empirical_cdf(values), label=f"{name} {task}", lw=1)
    ax.set_xlabel("achievable rate [bit/s/Hz]")
    ax.set_ylabel("CDF over UEs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_figures(out: Path, truth, observations: dict, predictions: dict, perfect, rate_scores: dict) -> list[Path]:
    """Write ``maps_<task>.png`` per task and one rate CDF per rate score; returns the paths written.

    ``rate_scores`` maps a score name (``"beam selection"``) to ``(ground-truth-map rates [num_ue],
    {(method, task): rates [num_ue]})``; its figure is ``rate_cdf_<name with underscores>.png``.
    """
    written = []
    for task, observation in observations.items():
        per_task = {name: pred for (name, t), pred in predictions.items() if t == task}
        path = out / f"maps_{task}.png"
        plot_task_maps(path, truth, observation, per_task)
        written.append(path)
    for score, (ground_truth_rates, rates) in rate_scores.items():
        path = out / f"rate_cdf_{score.replace(' ', '_')}.png"
        plot_rate_cdfs(path, perfect, ground_truth_rates, rates, title=f"rate with {score} from the map")
        written.append(path)
    return written

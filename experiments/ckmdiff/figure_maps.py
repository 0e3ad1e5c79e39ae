"""One held-out map through every CKMDiff task (issue 15): truth, observation, the best classical completion,
CKMDiff's mean of K samples and their per-cell spread, one row per task.

    python experiments/ckmdiff/figure_maps.py --run runs/ckmdiff-cpu-s0 --dataset datasets/crossap-dense11 \\
        --index 0 --out experiments/ckmdiff/figures/maps.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ckmsim.baselines.interpolation import KNN, Bicubic  # noqa: E402
from ckmsim.data.store import DatasetStore  # noqa: E402
from ckmsim.maps.degrade import Degradation  # noqa: E402
from ckmsim.maps.palette import BUILDING_COLOR as BUILDING_COLOUR  # noqa: E402  (one building colour everywhere)
from ckmsim.models.ckmdiff.data import load_truths  # noqa: E402
from ckmsim.models.ckmdiff.method import CKMDiffMethod  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=int, default=0, help="map of the split")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    truth = load_truths(DatasetStore.open(args.dataset), args.split)[args.index]
    method = CKMDiffMethod.from_run(args.run, num_steps=args.steps, num_samples=args.samples)
    low, high = method.encoding_.gain_range_db
    degradations = [Degradation.from_config({"steps": r["steps"]}) for r in method.info_["degradations"] if "steps" in r]
    x, y = truth["x"].values, truth["y"].values
    extent = (x.min() - 1, x.max() + 1, y.min() - 1, y.max() + 1)
    building = truth["building"].values
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad(BUILDING_COLOUR)
    fig, axes = plt.subplots(len(degradations), 5, figsize=(17, 3.3 * len(degradations)), squeeze=False)
    for row, degradation in enumerate(degradations):
        observation = degradation(truth, seed=np.random.default_rng([0, args.index, row]))
        classical = Bicubic() if observation.factor is not None else KNN()
        samples = method.predict_samples(observation)
        shown_obs = np.where(observation.observed, observation.values["gain_db"].values, np.nan)
        panels = [("truth", np.clip(truth["gain_db"].values, low, high)),
                  (f"observation ({degradation.task})", np.clip(shown_obs, low, high)),
                  (classical.name, np.clip(classical.predict(observation)["gain_db"].values, low, high)),
                  (f"CKMDiff mean of {samples.shape[0]} (S = {args.steps})", samples.mean(axis=0))]
        for col, (title, values) in enumerate(panels):
            ax = axes[row, col]
            image = ax.imshow(np.ma.masked_invalid(np.where(building, np.nan, values)), origin="lower", extent=extent,
                              cmap=cmap, vmin=low, vmax=high)
            ax.set_title(title, fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046, label="gain [dB]")
        spread = np.where(building, np.nan, samples.std(axis=0))
        ax = axes[row, 4]
        spread_cmap = plt.get_cmap("magma").copy()
        spread_cmap.set_bad(BUILDING_COLOUR)
        image = ax.imshow(np.ma.masked_invalid(spread), origin="lower", extent=extent, cmap=spread_cmap)
        ax.set_title("CKMDiff spread (std of the samples)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, label="std [dB]")
        for ax in axes[row]:
            ax.set_xlabel("x [m]")
            ax.set_ylabel("y [m]")
    fig.suptitle(f"Held-out map {args.index} of split '{args.split}' (grey: buildings; unobserved cells of the "
                 "observation are grey too)", fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

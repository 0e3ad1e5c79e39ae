"""Where the cross-AP schemes' squared error lies (issue 14): by the target's visibility order at each cell.

For one test split (``--num-aps N`` as in ``run_study.py``), every AP of every area in turn the target, all other
APs known: the share of open cells, the RMSE [dB] and the share of the pooled squared error of the UNet and of
eq. (7) in each class -- the target's visibility order 0 (seen), 1, 2, 3+ (corners a path through open cells must
turn, :func:`ckmsim.models.crossap.physics.visibility_order_map`), each split into cells the true map's rays
reached and cells at the floor of the range.

    python experiments/crossap/error_by_order.py --dataset datasets/crossap-dense11-test-3e6 \\
        --unet runs/crossap-dense11-visibility-s0 --num-aps 12
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.models.crossap.data import AreaCache, AreaRef, group_areas, other_aps
from ckmsim.models.crossap.method import CrossApUNetMethod
from ckmsim.models.crossap.physics import visibility_order_map

sys.path.insert(0, str(Path(__file__).parent))
from run_study import Schemes  # noqa: E402

CLASSES = ("0", "1", "2", "3+")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--unet", nargs="+", required=True)
    parser.add_argument("--num-aps", type=int, default=None)
    parser.add_argument("--symmetries", type=int, default=1, choices=(1, 8))
    parser.add_argument("--plot", type=Path, default=None, help="write a bar chart of the table here (PNG)")
    args = parser.parse_args(argv)
    unet = CrossApUNetMethod.from_run(args.unet, symmetries=args.symmetries)
    schemes = Schemes(unet, None, unet.encoding.gain_range_db)
    store = DatasetStore.open(args.dataset)
    refs = group_areas(store, "test")
    if args.num_aps:
        refs = [AreaRef(r.scene, r.tile_index, r.split, r.sample_indices[:args.num_aps]) for r in refs]
    areas = AreaCache(store, refs)
    names = ("unet", "distance_weighted")
    # [class, reached?] -> cells, squared error per scheme
    cells = np.zeros((len(CLASSES), 2))
    squared = {n: np.zeros((len(CLASSES), 2)) for n in names}
    for a in range(len(areas)):
        area = areas[a]
        targets = list(range(area.num_aps))
        known = [other_aps(area, t)[:unet.encoding.num_known_aps] for t in targets]
        truth = schemes.clip(area.gain_db)
        inferred = {n: schemes.infer(n, area, targets, known) for n in names}
        open_cells = ~area.building
        for t in targets:
            order = np.minimum(visibility_order_map(area.building, area.ap_cells[t]), 3)[open_cells]
            reached = (truth[t][open_cells] > schemes.gain_range_db[0]).astype(int)
            np.add.at(cells, (order, reached), 1)
            for n in names:
                np.add.at(squared[n], (order, reached), (inferred[n][t] - truth[t])[open_cells] ** 2)
    total = cells.sum()
    print(f"{args.dataset}, {len(refs)} areas, {args.num_aps or 'all'} APs; UNet {' '.join(args.unet)}")
    print("| target's order | cells | share | UNet RMSE (dB) | eq. (7) RMSE (dB) | ratio | UNet share of its MSE | eq. (7) share |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for k, label in enumerate(CLASSES):
        for r, kind in ((1, "reached"), (0, "floor")):
            n = cells[k, r]
            if not n:
                continue
            rmse = {s: np.sqrt(squared[s][k, r] / n) for s in names}
            print(f"| {label} | {kind} | {n / total:.3f} | {rmse['unet']:.2f} | {rmse['distance_weighted']:.2f} | "
                  f"{rmse['unet'] / rmse['distance_weighted']:.3f} | {squared['unet'][k, r] / squared['unet'].sum():.3f} | "
                  f"{squared['distance_weighted'][k, r] / squared['distance_weighted'].sum():.3f} |")
    if args.plot:
        plot(args.plot, cells, squared, f"{Path(args.dataset).name}, {args.num_aps or 'all'} APs per area")
    rmse = {s: np.sqrt(squared[s].sum() / total) for s in names}
    print(f"| all | | 1.000 | {rmse['unet']:.2f} | {rmse['distance_weighted']:.2f} | "
          f"{rmse['unet'] / rmse['distance_weighted']:.3f} | | |")


def plot(path: Path, cells: np.ndarray, squared: dict, title: str) -> None:
    """Bars of each scheme's RMSE [dB] per (order, reached / floor) class, and the classes' share of the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(k, r) for k in range(len(CLASSES)) for r in (1, 0) if cells[k, r]]
    labels = [f"order {CLASSES[k]}\n{'reached' if r else 'floor'}" for k, r in keys]
    x = np.arange(len(keys))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 1])
    for offset, (name, label) in zip((-0.2, 0.2), (("unet", "cross-AP UNet"), ("distance_weighted", "eq. (7)"))):
        rmse = [np.sqrt(squared[name][k, r] / cells[k, r]) for k, r in keys]
        top.bar(x + offset, rmse, width=0.4, label=label)
    top.set_ylabel("RMSE (dB)")
    top.set_title(f"Error by the target's visibility order: {title}")
    top.legend()
    top.grid(axis="y", alpha=0.3)
    bottom.bar(x, [100 * cells[k, r] / cells.sum() for k, r in keys], width=0.6, color="0.5")
    bottom.set_ylabel("open cells (%)")
    bottom.set_xticks(x, labels, fontsize=8)
    bottom.set_xlabel("target's visibility order at the cell (corners a path must turn), true map reached or at the floor")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

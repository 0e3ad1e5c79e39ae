"""Seconds per map of every classical baseline's predict(), and how it grows with the map size.

Usage::

    python benchmarks/bench_baselines.py [--sizes 64 128 256] [--factor 4] [--repeats 3] [--quick]
                                         [--methods bicubic kriging ...]

For each size ``n`` a synthetic ``n x n`` CKM is built (log-distance gain around a BS plus smooth
sinusoidal shadowing, a few rectangular buildings, ``gain_db`` only), sub-sampled uniformly by ``--factor``
(:func:`ckmsim.maps.degrade.uniform_subsample`, the x-factor super-resolution task), and every method's
``predict`` is timed, best of ``--repeats`` runs. All methods and sizes are measured side by side in this
one run, so the columns compare with each other; absolute seconds depend on the machine.

The growth exponent is the least-squares slope of log(seconds) against log(number of cells) over the
sizes: ~1 is linear in the map area, ~2 quadratic. With only two sizes it is the two-point slope.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import ckmsim  # noqa: F401  (Mitsuba before anything that could pull in TensorFlow)
from ckmsim.baselines.interpolation import INTERPOLATORS
from ckmsim.baselines.least_squares import LEAST_SQUARES
from ckmsim.baselines.model_based import MODEL_BASED
from ckmsim.baselines.scattered import SCATTERED
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import uniform_subsample
from ckmsim.maps.grid import Grid

#: Registry name -> Method class: every classical baseline with the Method face.
METHODS = {**INTERPOLATORS, **SCATTERED, **LEAST_SQUARES, **MODEL_BASED}
CELL_SIZE_M = 2.0
FREQUENCY_HZ = 3.5e9


def synthetic_truth(num_cells: int, seed: int = 0):
    """An ``[n, n]`` CKM: -40 dB - 27 log10(d) + 6 dB smooth shadowing, buildings on ~8 % of the cells.

    The layout scales with ``n`` (shadowing periods and buildings are fractions of the map), so every size
    shows the same picture at a finer resolution.
    """
    rng = np.random.default_rng(seed)
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=num_cells, num_y=num_cells, cell_size_m=CELL_SIZE_M)
    bs_m = np.array([0.3 * grid.num_x * CELL_SIZE_M / 2, -0.2 * grid.num_y * CELL_SIZE_M / 2, 25.0])
    distance_m = np.linalg.norm(grid.cell_centers_m() - bs_m, axis=-1)
    rows, cols = np.indices(grid.shape) / num_cells
    shadowing_db = 6.0 * np.sin(2 * np.pi * 3.1 * cols + 0.4) * np.cos(2 * np.pi * 2.3 * rows)
    gain_db = -40.0 - 27.0 * np.log10(np.maximum(distance_m, 1.0)) + shadowing_db
    building = np.zeros(grid.shape, dtype=bool)
    for _ in range(5):
        # [row0, col0] in [0.05, 0.8) of the map, sides 10-15 % of it
        row0, col0 = (rng.uniform(0.05, 0.8, 2) * num_cells).astype(int)
        height, width = (rng.uniform(0.10, 0.15, 2) * num_cells).astype(int) + 1
        building[row0:row0 + height, col0:col0 + width] = True
    gain_db[building] = np.nan
    return make_ckm(grid, {"gain_db": gain_db, "building": building},
                    {"scene": "bench_synthetic", "frequency_hz": FREQUENCY_HZ, "bs_position_m": bs_m.tolist()})


def best_seconds(method, observation, repeats: int) -> float:
    """Fastest of ``repeats`` wall-clock timings of ``method.predict(observation)`` [s]."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        method.predict(observation)
        best = min(best, time.perf_counter() - start)
    return best


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Slope of log(seconds) vs log(number of cells = n^2), least squares over the sizes."""
    if len(sizes) < 2:
        return float("nan")
    slope, _ = np.polyfit(np.log(np.square(sizes, dtype=np.float64)), np.log(seconds), 1)
    return float(slope)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], help="map sides [cells]")
    parser.add_argument("--factor", type=int, default=4, help="uniform sub-sampling factor (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method and size; the best counts")
    parser.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS),
                        help="methods to time (default: all)")
    parser.add_argument("--quick", action="store_true", help="sizes 32 64, one run each: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [32, 64], 1
    if args.factor < 1 or args.repeats < 1 or min(args.sizes) < 2 * args.factor:
        parser.error(f"need factor >= 1, repeats >= 1 and every size >= 2 x factor. Received: "
                     f"factor={args.factor}, repeats={args.repeats}, sizes={args.sizes}")
    sizes = sorted(set(args.sizes))

    observations = {n: uniform_subsample(synthetic_truth(n), args.factor) for n in sizes}
    print(f"predict() seconds per map, best of {args.repeats}; gain_db only; x{args.factor} uniform "
          f"sub-sampling; sizes {sizes} (cells per side)", flush=True)
    header = f"{'method':<18}" + "".join(f"{f'{n}x{n}':>12}" for n in sizes) + f"{'exponent':>10}"
    print(header)
    print("-" * len(header))
    for name in args.methods:
        method = METHODS[name]()
        seconds = [best_seconds(method, observations[n], args.repeats) for n in sizes]
        row = f"{name:<18}" + "".join(f"{s:>12.4f}" for s in seconds)
        print(row + f"{growth_exponent(sizes, seconds):>10.2f}", flush=True)
    print("exponent: slope of log(seconds) vs log(cells); 1 = linear in map area")
    return 0


if __name__ == "__main__":
    sys.exit(main())

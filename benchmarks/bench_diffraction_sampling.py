"""Diffraction sampling probability against PathSolver accuracy, side by side on the same probe cells.

    python benchmarks/bench_diffraction_sampling.py                              # munich, 256 probe cells
    python benchmarks/bench_diffraction_sampling.py --scene scenes/city-s0/scene.xml --bs=-32,0,45.6
    python benchmarks/bench_diffraction_sampling.py --probabilities 0.2 0.5 --rays 3e4 1e5 --reference-rays 1e6

For each probability p (``RayTracingSettings.diffraction_sampling_probability``) and each ray count, the probe
cells are traced once; every run, plus one run per p at ``--reference-rays``, enters one union reference
(:func:`ckmsim.raytrace.convergence.union_reference`), against which each run's strongest and second path are
scored (0.5 dB, 0.5 deg). All runs share the reference, so the rows compare with each other. Times are wall
seconds of one PathSolver call for all probes, after an untimed warm-up.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="munich")
    parser.add_argument("--center", default="8.5,21", help="study-area centre 'x,y' [m]")
    parser.add_argument("--bs", default="8.5,21,27", help="BS position 'x,y,z' [m]")
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--cell-size", type=float, default=2.0)
    parser.add_argument("--probes", type=int, default=256)
    parser.add_argument("--probabilities", type=float, nargs="+", default=[0.2, 0.5, 0.8])
    parser.add_argument("--rays", type=float, nargs="+", default=[3e4, 1e5, 3e5])
    parser.add_argument("--reference-rays", type=float, default=1e6)
    args = parser.parse_args(argv)

    from ckmsim.maps.grid import Grid
    from ckmsim.raytrace.convergence import (ConvergenceCheck, probe_positions_m, strongest_paths_match,
                                             union_reference)
    from ckmsim.raytrace.paths import trace_paths
    from ckmsim.raytrace.scene_setup import place_base_station
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.load import load_scene

    center = [float(v) for v in args.center.split(",")]
    bs = [float(v) for v in args.bs.split(",")]
    scene = load_scene(args.scene)
    grid = Grid(center[0], center[1], args.cells, args.cells, args.cell_size, 1.5)
    base = RayTracingSettings(receivers_per_call=args.probes)
    place_base_station(scene, bs, base)
    positions = probe_positions_m(scene, grid, ConvergenceCheck(num_probes=args.probes))
    base = replace(base, receivers_per_call=len(positions))
    print(f"{args.scene}: {len(positions)} probe cells, BS {bs}, depth {base.max_depth}, diffraction on")
    trace_paths(scene, positions, replace(base, path_samples=int(min(args.rays))), progress=False)  # warm-up

    runs, references = {}, []
    for p in args.probabilities:
        for rays in sorted(args.rays):
            start = time.perf_counter()
            runs[(p, rays)] = (trace_paths(scene, positions, replace(base, path_samples=int(rays),
                                                                     diffraction_sampling_probability=p),
                                           progress=False), time.perf_counter() - start)
            print(f"  p = {p:.2f}, {rays:.0e} rays: {runs[(p, rays)][1]:.1f} s", flush=True)
        start = time.perf_counter()
        references.append(trace_paths(scene, positions, replace(base, path_samples=int(args.reference_rays),
                                                                diffraction_sampling_probability=p),
                                      progress=False))
        print(f"  p = {p:.2f}, reference {args.reference_rays:.0e} rays: {time.perf_counter() - start:.1f} s",
              flush=True)
    reference = union_reference([run for run, _ in runs.values()] + references)
    nlos = strongest_paths_match(reference, reference)["num_nlos_ue"]
    print(f"reference: union of {len(runs) + len(references)} runs; {nlos} of {len(positions)} probes NLoS")
    print("| p | rays | time | strongest path right (NLoS) | second path right (NLoS) |")
    print("|---:|---:|---:|---|---|")
    for p in args.probabilities:
        for rays in sorted(args.rays) + [args.reference_rays]:
            if rays == args.reference_rays:
                run, elapsed = references[args.probabilities.index(p)], float("nan")
            else:
                run, elapsed = runs[(p, rays)]
            match = strongest_paths_match(run, reference)
            cells = [f"{100 * m:.1f} % ({100 * n:.1f} %)" for m, n in zip(match["match"], match["match_nlos"])]
            timing = "in reference" if np.isnan(elapsed) else f"{elapsed:.1f} s"
            print(f"| {p:.2f} | {rays:.0e} | {timing} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

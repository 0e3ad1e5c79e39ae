"""Re-trace one split of a gain-only dataset with more map rays into a new store (a converged truth).

``truth_noise.py`` shows that the 3e5-ray maps of ``dataset-dense11.toml`` are far from converged: two
independent 3e5-ray estimates of one map differ by 10-20 dB RMSE on open cells, mostly cells that one
estimate leaves at the floor. This script writes the samples of ``--split`` again, each with the seed it was
built with and ``--rays`` map rays, into ``--out``: same records, grids, AP sites and building masks, only the
gain maps re-estimated. The study (``run_study.py --dataset OUT --split test``) then scores every scheme
against, and gives the known APs, maps whose sampling noise is ~sqrt(rays ratio) smaller.

Resumable: rerun the same command after an interruption and it continues after the last committed sample.

    python experiments/crossap/retrace_split.py --dataset datasets/crossap-dense11 --split test --rays 3e6 \\
        --out datasets/crossap-dense11-test-3e6
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ckmsim.data.config import DatasetConfig
from ckmsim.data.store import DatasetStore
from ckmsim.maps.grid import Grid
from ckmsim.raytrace.ground_truth import trace_ground_truth
from ckmsim.scene.load import load_scene


def open_or_create(out: Path, source: DatasetStore, split: str, rays: int) -> DatasetStore:
    """The derived store at ``out``: resumed when it was made from the same source, split and rays."""
    derived = {"source": str(source.path), "split": split, "radio_map_samples": rays}
    if (out / "manifest.json").exists():
        store = DatasetStore.open(out, writable=True)
        if store.manifest.get("retraced") != derived:
            raise SystemExit(f"'{out}' holds another re-trace ({store.manifest.get('retraced')}); choose a new folder")
        return store
    header = {key: copy.deepcopy(value) for key, value in source.manifest.items() if key not in ("samples", "format")}
    header["config"]["ray_tracing"]["radio_map_samples"] = rays
    header["name"] = f"{header.get('name', 'dataset')}-{split}-{rays:.0e}"
    header["retraced"] = derived
    return DatasetStore.create(out, header)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="gain-only source store")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--rays", type=float, default=3e6, help="RadioMapSolver rays per map")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    source = DatasetStore.open(args.dataset)
    if not source.gain_only:
        raise SystemExit(f"'{args.dataset}' is not gain-only: only its gain maps would be re-traced")
    settings = DatasetConfig.from_dict(source.manifest["config"]).ray_tracing
    rays = int(args.rays)
    out = open_or_create(Path(args.out), source, args.split, rays)
    indices = source.indices(args.split)
    done = {r["id"] for r in out.records}
    scenes = {}
    started = time.perf_counter()
    for count, index in enumerate(indices, 1):
        record = source.records[index]
        if record["id"] in done:
            continue
        scene = scenes.setdefault(record["scene"], load_scene(record["scene"]))
        sample = source.sample(int(index))
        tic = time.perf_counter()
        ckm, _ = trace_ground_truth(scene, record["scene"], Grid.from_dict(record["grid"]), record["tx_position_m"],
                                    replace(settings, radio_map_samples=rays, seed=int(record["seed"])), 0,
                                    progress=False)
        if not np.array_equal(ckm["building"].values, sample["building"].values.astype(ckm["building"].dtype)):
            raise SystemExit(f"sample {record['id']}: the re-traced building mask differs from the stored one")
        arrays = {name: (tuple(sample[name].dims), sample[name].values) for name in sample.data_vars}
        arrays["gain_db"] = (tuple(sample["gain_db"].dims), ckm["gain_db"].values.astype(sample["gain_db"].dtype))
        out.append(arrays, {**record, "retrace_s": time.perf_counter() - tic})
        print(f"[{count}/{len(indices)}] {record['id']}: {time.perf_counter() - tic:.1f} s "
              f"(elapsed {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

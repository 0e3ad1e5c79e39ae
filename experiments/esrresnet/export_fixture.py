"""Write the held-out fixture of the shipped-weights test: whole ground-truth CKMs of the test cities.

    python experiments/esrresnet/export_fixture.py --dataset datasets/esrresnet-cpu \
        --out tests/models/data/esrresnet-heldout.npz [--per-scene 2]

The first ``--per-scene`` test samples (every ``--every``-th) of each held-out scene of the store (city-s2 and city-t10 in
``dataset-cpu.toml``), every layer, in one compressed ``.npz``; :func:`load_fixture` rebuilds the CKMs.
No sample of a training or validation city is written: the test is a held-out score.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def write_fixture(dataset: Path, out: Path, per_scene: int, every: int = 1) -> list[str]:
    from ckmsim.data.store import DatasetStore

    store = DatasetStore.open(dataset)
    chosen: dict[str, list[int]] = {}
    for index in store.indices("test")[::every]:
        scene = Path(store.records[int(index)]["scene"]).parent.name
        if len(chosen.setdefault(scene, [])) < per_scene:
            chosen[scene].append(int(index))
    arrays, ids = {}, []
    for number, index in enumerate(i for indices in chosen.values() for i in indices):
        ckm = store.ckm(index)
        for name, variable in ckm.data_vars.items():
            arrays[f"{number}/{name}"] = variable.values
        attrs = {k: v for k, v in ckm.attrs.items() if k in ("bs_position_m", "frequency_hz", "grid", "sample_id",
                                                                 "gain_floor_db")}
        arrays[f"{number}/attrs"] = np.array(json.dumps(attrs))
        ids.append(ckm.attrs["sample_id"])
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--per-scene", type=int, default=2)
    parser.add_argument("--every", type=int, default=1, help="take every k-th test sample (spread over tiles)")
    args = parser.parse_args()
    ids = write_fixture(args.dataset, args.out, args.per_scene, args.every)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB): {ids}")


if __name__ == "__main__":
    main()

"""Trace a gain-only dataset on a GPU machine that has no TensorFlow, then assemble the store here.

The lent GPU machine (see the README's "GPU" notes) holds PyTorch and JAX but no TensorFlow, and nothing can be
installed there from a registry. Tracing needs only Sionna RT (Mitsuba / Dr.Jit, no TensorFlow): this script's
``trace`` step runs :func:`ckmsim.data.builder.plan_samples` and :func:`~ckmsim.data.builder.trace_sample` there,
for a time budget, and pickles the traced samples into shards; its ``assemble`` step appends them here, in plan
order, into an ordinary resumable store (the same store ``ckmsim dataset build`` writes: same plan, seeds, records,
manifest). A sample traced on the CUDA variant and one traced on LLVM are two draws of the same estimator, not the
same numbers; the manifest's build entry records the variant.

    # on the device (its python3 has numpy, scipy, xarray, matplotlib; Sionna RT travels as a bundle):
    python3 experiments/crossap/device_build.py trace CONFIG --out $OUT --budget-s 420
    # here, after the shards came back:
    python experiments/crossap/device_build.py assemble CONFIG --shards DIR --out datasets/NAME

``trace --start N`` continues a cut-off run from plan index N (``assemble`` is resumable too: it skips what the
store already holds).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import pickle
import sys
import time
import types
from pathlib import Path

#: sionna.rt imports its notebook previewer (ipywidgets, pythreejs, IPython) at import time; the device has none of
#: them and tracing never calls the previewer, so empty stand-ins are enough there.
PREVIEW_MODULES = ("IPython", "IPython.display", "ipywidgets", "ipywidgets.embed", "pythreejs")


def stand_in_preview_modules() -> list[str]:
    """Put an empty module in ``sys.modules`` for each previewer dependency that is not installed."""
    roots = {name.split(".")[0] for name in PREVIEW_MODULES}
    absent = {root for root in roots if root not in sys.modules and importlib.util.find_spec(root) is None}
    missing = []
    for name in PREVIEW_MODULES:
        if name.split(".")[0] not in absent:
            continue
        module = types.ModuleType(name)
        module.__getattr__ = lambda attr: type(attr, (), {})  # any class the previewer names
        sys.modules[name] = module
        missing.append(name)
    return missing


def trace(config_path: str, out: Path, budget_s: float, start: int, shard_size: int) -> None:
    import ckmsim  # noqa: F401  (Mitsuba first)
    import mitsuba as mi
    from ckmsim.data.builder import plan_samples, trace_sample
    from ckmsim.data.config import load_dataset_config

    config = load_dataset_config(config_path)
    t0 = time.perf_counter()
    tasks = plan_samples(config)
    print(f"planned {len(tasks)} samples in {time.perf_counter() - t0:.1f} s; tracing from {start}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    shard, index, started = [], start, time.perf_counter()
    for task in tasks[start:]:
        if time.perf_counter() - started > budget_s:
            break
        arrays, record = trace_sample(task, config)
        shard.append((task.index, arrays, record))
        index = task.index + 1
        if len(shard) == shard_size:
            _write_shard(out, shard, mi.variant())
            shard = []
        if index % 100 == 0:
            rate = (index - start) / (time.perf_counter() - started)
            print(f"{index}/{len(tasks)} samples, {rate:.2f} samples/s, variant {mi.variant()}", flush=True)
    if shard:
        _write_shard(out, shard, mi.variant())
    wall = time.perf_counter() - started
    print(f"traced samples {start}..{index - 1} in {wall:.0f} s ({(index - start) / max(wall, 1e-9):.2f} samples/s, "
          f"variant {mi.variant()}); next start {index if index < len(tasks) else 'none (done)'}", flush=True)


def _write_shard(out: Path, shard: list, variant: str) -> None:
    first, last = shard[0][0], shard[-1][0]
    with gzip.open(out / f"shard-{first:05d}-{last:05d}.pkl.gz", "wb", compresslevel=6) as handle:
        pickle.dump({"mitsuba_variant": variant, "samples": shard}, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _read_shard(path: Path, variant: str | None) -> tuple[str, list]:
    """``(variant, [(plan index, arrays, record), ...])``; shards of the first format (a bare list) name no
    variant, so ``variant`` must be given for them."""
    with gzip.open(path, "rb") as handle:
        content = pickle.load(handle)
    if isinstance(content, list):
        if variant is None:
            raise SystemExit(f"{path.name} records no Mitsuba variant: give --variant")
        return variant, content
    return content["mitsuba_variant"], content["samples"]


def assemble(config_path: str, shards: Path, out: Path, variant: str | None = None) -> None:
    import ckmsim  # noqa: F401
    from ckmsim.data.builder import open_or_create_store, plan_samples
    from ckmsim.data.config import load_dataset_config

    config = load_dataset_config(config_path)
    tasks = plan_samples(config)
    store = open_or_create_store(out, config, tasks)
    files = sorted(shards.glob("shard-*.pkl.gz"))
    if not files:
        raise SystemExit(f"no shard-*.pkl.gz in '{shards}'")
    started, added, variants = time.perf_counter(), 0, set()
    for path in files:
        shard_variant, samples = _read_shard(path, variant)
        for index, arrays, record in samples:
            if index < len(store):
                continue
            if index != len(store):
                raise SystemExit(f"{path.name}: sample {index} follows the store's {len(store)} committed "
                                 f"samples; a shard is missing")
            if record["id"] != tasks[index].id:
                raise SystemExit(f"{path.name}: sample {index} is '{record['id']}', the plan says "
                                 f"'{tasks[index].id}' (another config?)")
            store.append(arrays, record)
            added += 1
            variants.add(shard_variant)
    builds = store.manifest.get("builds", [])
    builds.append({"samples": added, "wall_s": None, "workers": 1, "ray_address": None,
                   "mitsuba_variant": ", ".join(sorted(variants)) or None, "traced_by": "device_build.py"})
    store.update_header(builds=builds)
    print(f"'{out}': {added} samples appended in {time.perf_counter() - started:.0f} s; "
          f"{len(store)}/{len(tasks)} committed")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    on_device = steps.add_parser("trace", help="trace samples into shards (on the device)")
    on_device.add_argument("config")
    on_device.add_argument("--out", type=Path, required=True)
    on_device.add_argument("--budget-s", type=float, default=420.0, help="stop starting samples after this")
    on_device.add_argument("--start", type=int, default=0, help="first plan index to trace")
    on_device.add_argument("--shard-size", type=int, default=1000)
    here = steps.add_parser("assemble", help="append traced shards into a store (here)")
    here.add_argument("config")
    here.add_argument("--shards", type=Path, required=True)
    here.add_argument("--out", type=Path, required=True)
    here.add_argument("--variant", default=None, help="Mitsuba variant of shards that record none")
    args = parser.parse_args(argv)
    if args.step == "trace":
        stood_in = stand_in_preview_modules()
        if stood_in:
            print(f"stand-ins for the previewer's modules: {', '.join(stood_in)}", flush=True)
        trace(args.config, args.out, args.budget_s, args.start, args.shard_size)
    else:
        assemble(args.config, args.shards, args.out, args.variant)


if __name__ == "__main__":
    main()

"""Memory and time of E-SRResNet's attention variants on this machine, one configuration per fresh process.

For each configuration the script starts a new Python process (so that peak resident memory belongs to that
configuration alone), builds the network, runs one warm-up train step on a tiny input (tracing), then times
``--steps`` train steps (MSE, Adam 2e-4) and one forward pass at the requested size, and reports the growth
of the peak resident set size (ru_maxrss) over the warm-up as the memory the size itself needs.

    python experiments/esrresnet/bench_attention.py --size 64 --batch 1 --blocks 1 2 4 --out bench.json

Peak RSS on CPU counts every buffer TensorFlow keeps alive during the step (activations saved for the
gradient, attention scores and their softmax); it is the CPU analogue of a GPU's peak allocation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import ckmsim  # Mitsuba before TensorFlow
import json, resource, sys, time
import numpy as np
import keras
from ckmsim.models.esrresnet.network import build_esrresnet

args = json.loads(sys.argv[1])
if args["mixed"]:
    keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(0)
model = build_esrresnet(args["preset"], num_blocks=args["blocks"], attention_mode=args["mode"],
                        fusion_after=[b for b in (4, 8, 12) if b <= args["blocks"]], **args.get("overrides", {}))
model.compile(optimizer=keras.optimizers.Adam(2e-4), loss="mse", jit_compile=args["jit"])
rng = np.random.default_rng(0)
channels = model.num_input_channels
def pair(size, batch):
    return (rng.random((batch, size, size, channels), dtype=np.float32),
            rng.random((batch, 2 * size, 2 * size, 2), dtype=np.float32))
# warm-up at a tiny size that every attention mode accepts (window 8, pool 4)
model.train_on_batch(*pair(8, 1))
base_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x, y = pair(args["size"], args["batch"])
t0 = time.perf_counter(); model.train_on_batch(x, y); first_s = time.perf_counter() - t0
times = []
for _ in range(args["steps"]):
    t0 = time.perf_counter(); model.train_on_batch(x, y); times.append(time.perf_counter() - t0)
train_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); model.predict_on_batch(x); forward_s = time.perf_counter() - t0
print(json.dumps({**args, "params": model.count_params(), "first_step_s": first_s,
                  "step_s": float(np.median(times)) if times else first_s,
                  "samples_per_s": args["batch"] / (float(np.median(times)) if times else first_s),
                  "forward_s": forward_s, "peak_rss_gib": train_kib / 2**20,
                  "step_rss_growth_gib": (train_kib - base_kib) / 2**20}))
"""


#: Compilation variants: XLA (``jit_compile``) and the ``mixed_float16`` policy, alone and together.
VARIANTS = {"plain": {"jit": False, "mixed": False}, "xla": {"jit": True, "mixed": False},
            "mixed": {"jit": False, "mixed": True}, "mixed+xla": {"jit": True, "mixed": True}}


def run_one(config: dict) -> dict:
    """One configuration in a fresh interpreter; its JSON line, or the error tail."""
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(config)], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {**config, "error": (done.stderr or done.stdout)[-800:]}
    return json.loads(lines[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="esrresnet_primary")
    parser.add_argument("--size", type=int, default=64, help="low-resolution input side (64 in the paper)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--modes", nargs="+", default=["global", "window", "pooled"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=["plain"], choices=sorted(VARIANTS),
                        help="compilation variants measured side by side: plain, xla (jit_compile), "
                             "mixed (mixed_float16), mixed+xla")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for mode, blocks, variant in itertools.product(args.modes, args.blocks, args.variants):
        config = {"preset": args.preset, "mode": mode, "blocks": blocks, "size": args.size,
                  "batch": args.batch, "steps": args.steps, "variant": variant, **VARIANTS[variant]}
        row = run_one(config)
        rows.append(row)
        if "error" in row:
            print(f"{mode:7s} {blocks:3d} blocks {variant}: FAILED {row['error'][-300:]}", flush=True)
        else:
            print(f"{mode:7s} {blocks:3d} blocks {variant:9s}, {args.size}x{args.size}, batch {args.batch}: "
                  f"step {row['step_s']:.2f} s ({row['samples_per_s']:.2f} samples/s), forward "
                  f"{row['forward_s']:.2f} s, peak RSS {row['peak_rss_gib']:.2f} GiB "
                  f"(+{row['step_rss_growth_gib']:.2f} GiB over warm-up)", flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

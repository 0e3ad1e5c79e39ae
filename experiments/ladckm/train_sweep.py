"""Train one LAD-CKM / FIRE / NeRF2 config for several BS x UE arrays (the paper trains one network per
(N_t, N_r)): each array trains into ``<out>-<N_t>x<N_r>`` (resumable), the config's [arrays] replaced.

    python experiments/ladckm/train_sweep.py experiments/ladckm/train-cpu.toml --arrays 8x1 16x1 32x1 [--seed 0] \
        [--split-by area]

``--split-by area`` trains on the builder's train tiles (every block) instead of the config's split by block,
into ``<out>-<N_t>x<N_r>-area``.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import time
from dataclasses import replace

from ckmsim.models.ladckm.train import load_ladckm_train_config, train_ladckm_config


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--arrays", nargs="+", required=True, help="N_txN_r pairs, e.g. 8x1 16x1 16x4")
    parser.add_argument("--seed", type=int, default=None, help="overrides [train] seed (and names the folders)")
    parser.add_argument("--split-by", choices=("block", "area"), default=None,
                        help="overrides [split] by (area: the builder's tiles; names the folders)")
    args = parser.parse_args(argv)
    base = load_ladckm_train_config(args.config)
    if args.split_by is not None:
        base = replace(base, split_by=args.split_by)
    if args.seed is not None:
        base = replace(base, settings=replace(base.settings, seed=args.seed))
    for value in args.arrays:
        nt, nr = (int(v) for v in value.lower().split("x"))
        suffix = (f"-{nt}x{nr}" + (f"-s{args.seed}" if args.seed is not None else "")
                  + ("-area" if args.split_by == "area" else ""))
        config = replace(base, num_bs_antennas=nt, num_ue_antennas=nr, out=base.out + suffix)
        started = time.perf_counter()
        out = train_ladckm_config(config)
        print(f"{value}: {out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

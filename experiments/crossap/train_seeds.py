"""Train one cross-AP configuration with several seeds (issue 14: mean and spread over >= 3 seeds).

Each seed trains into ``<out>-s<seed>`` (resumable: re-running continues unfinished runs) with ``[train] seed``
replaced, which changes the network's initialisation and every example's draw of known APs and symmetry.

    python experiments/crossap/train_seeds.py experiments/crossap/train-dense.toml --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

from ckmsim.models.crossap.train import load_crossap_train_config, train_crossap


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="cross-AP training TOML")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="run folder prefix (default: the config's [crossap] out)")
    args = parser.parse_args(argv)
    prefix = args.out or load_crossap_train_config(args.config).out
    for seed in args.seeds:
        started = time.perf_counter()
        result = train_crossap(args.config, out=f"{prefix}-s{seed}", seed=seed)
        print(f"seed {seed}: {result.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

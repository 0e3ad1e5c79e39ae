"""LAD-CKM's study (issue 16) from one config: ``ckmsim csi-study`` (:mod:`ckmsim.eval.csi_study`) as a script.

    python experiments/ladckm/run_study.py experiments/ladckm/study-cpu.toml [--out DIR]
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse

from ckmsim.eval.csi_study import load_csi_study_config, run_csi_study


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="CSI study TOML (experiments/ladckm/study-cpu.toml)")
    parser.add_argument("--out", default=None, help="output folder (default: the config's [study] out)")
    args = parser.parse_args(argv)
    return run_csi_study(load_csi_study_config(args.config, out=args.out))


if __name__ == "__main__":
    main()

"""Unconditional generation (A = 0) of a CKMDiff run, scored by a Fréchet distance on features of a network
ckmsim trains itself (issue 15).

Inception weights cannot be downloaded here, so the features are the posterior means of the VAE of *another*
CKMDiff run (``--feature-run``, a different training seed: 8 x 8 x 3 = 192 numbers per 32 x 32 map), not
Inception's. The values are comparable between the rows of this table only, never with the paper's FID.
Rows: CKMDiff's generated maps against the held-out city's maps, and as references real maps of the
validation city and of the training cities against the same held-out maps (what "another city" costs), and a
trivial generator (the training mean map plus Gaussian pixel noise of the training spread).

    python experiments/ckmdiff/generation.py --run runs/ckmdiff-cpu-s0 --feature-run runs/ckmdiff-cpu-s1 \\
        --dataset datasets/crossap-dense11 --num 240
"""

from __future__ import annotations

import argparse

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.metrics.fid import fid_from_features
from ckmsim.models.ckmdiff.data import load_truths
from ckmsim.models.ckmdiff.method import CKMDiffMethod


def pixels_of(truths, encoding) -> np.ndarray:
    """``[N, H, W, 1]`` gain pixels of real maps (buildings 0)."""
    return np.stack([encoding.target(t) for t in truths])


def generate(method: CKMDiffMethod, count: int, shape: tuple[int, int], seed: int, batch: int = 16) -> np.ndarray:
    """``[count, H, W, 1]`` pixels of unconditional samples (Alg. 2 with a zero condition image)."""
    rng = np.random.default_rng(seed)
    draws = [method.sample_pixels(np.zeros((min(batch, count - start),) + shape + (3,), np.float32), rng)
             for start in range(0, count, batch)]
    return np.clip(np.concatenate(draws), 0.0, 1.0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--feature-run", required=True, help="another CKMDiff run whose VAE gives the features")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--num", type=int, default=240)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    method = CKMDiffMethod.from_run(args.run, num_steps=args.steps)
    features_vae = CKMDiffMethod.from_run(args.feature_run).model_.vae
    encoding = method.encoding_
    store = DatasetStore.open(args.dataset)
    test = pixels_of(load_truths(store, "test")[:args.num], encoding)
    val = pixels_of(load_truths(store, "val")[:args.num], encoding)
    train_all = load_truths(store, "train")
    pick = np.random.default_rng(args.seed).choice(len(train_all), size=min(args.num, len(train_all)), replace=False)
    train = pixels_of([train_all[i] for i in pick], encoding)
    rng = np.random.default_rng(args.seed + 1)
    trivial = np.clip(train.mean(axis=0, keepdims=True) + rng.normal(size=(len(test),) + test.shape[1:])
                      * train.std(axis=0, keepdims=True), 0.0, 1.0)
    generated = generate(method, len(test), test.shape[1:3], args.seed)

    def features(pixels):
        return np.asarray(features_vae.encode(pixels.astype(np.float32))).reshape(len(pixels), -1)

    reference = features(test)
    rows = [("CKMDiff generation (S = %d)" % args.steps, generated), ("real maps, validation city", val),
            ("real maps, training cities", train), ("training mean + Gaussian noise", trivial)]
    print(f"Fréchet distance on VAE features of {args.feature_run} to {len(test)} held-out maps "
          f"(not Inception: comparable within this table only)\n")
    print("| set | distance | mean pixel | share of pixels < 0.05 |\n|---|---:|---:|---:|")
    for name, pixels in rows:
        print(f"| {name} | {fid_from_features(features(pixels), reference):.2f} | {pixels.mean():.3f} | "
              f"{np.mean(pixels < 0.05):.3f} |")
    print(f"| held-out city itself (reference) | 0 | {test.mean():.3f} | {np.mean(test < 0.05):.3f} |")


if __name__ == "__main__":
    main()

"""Unconditional generation (A = 0) of a CKMDiff run, scored by Fréchet distances on features of networks
ckmsim trains itself (issue 15), and on Inception's when the user supplies its weights file.

Inception weights cannot be downloaded here, so the default features are those of a **city classifier** that
this script trains on the training cities' real maps (a small CNN telling the nine cities apart from one
32 x 32 gain map; its 64 global-average-pooled features of the last conv layer): a network trained to tell
real maps apart, so that it sees buildings, streets and shadows. With ``--feature-run`` the posterior means of
another CKMDiff run's VAE (192 numbers per map) are a second feature space; with ``--inception-weights FILE``
Inception-v3's 2048 features (:class:`ckmsim.metrics.fid.InceptionFeatureExtractor`). Values are comparable
between the rows of one column only, never with the paper's FID.
Rows: CKMDiff's generated maps against the held-out city's maps, and as references real maps of the
validation city and of the training cities against the same held-out maps (what "another city" costs), and a
trivial generator (the training mean map plus Gaussian pixel noise of the training spread).

    python experiments/ckmdiff/generation.py --run runs/ckmdiff-cpu-s0 --dataset datasets/crossap-dense11 \\
        --num 240 [--feature-run runs/ckmdiff-cpu-s1] [--inception-weights inception_v3_notop.h5]
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


def train_city_classifier(pixels: np.ndarray, cities: np.ndarray, epochs: int = 15, seed: int = 0):
    """A small CNN classifying the city of each ``[N, H, W, 1]`` map (``cities``: ``[N]`` int); returns the model
    giving the ``[N, 64]`` pooled features and its training accuracy."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(pixels.shape[1:])
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    features = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(int(cities.max()) + 1)(features)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(pixels, cities, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return keras.Model(inputs, features), float(history.history["accuracy"][-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--feature-run", help="another CKMDiff run whose VAE gives a second feature space")
    parser.add_argument("--inception-weights", help="Inception-v3 (no top) weights file: the FID column")
    parser.add_argument("--classifier-epochs", type=int, default=15)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--num", type=int, default=240)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    method = CKMDiffMethod.from_run(args.run, num_steps=args.steps)
    encoding = method.encoding_
    store = DatasetStore.open(args.dataset)
    test = pixels_of(load_truths(store, "test")[:args.num], encoding)
    val = pixels_of(load_truths(store, "val")[:args.num], encoding)
    train_all = load_truths(store, "train")
    train_pixels = pixels_of(train_all, encoding)
    names = sorted({t.attrs["scene"] for t in train_all})
    cities = np.array([names.index(t.attrs["scene"]) for t in train_all])
    pick = np.random.default_rng(args.seed).choice(len(train_all), size=min(args.num, len(train_all)), replace=False)
    train = train_pixels[pick]
    rng = np.random.default_rng(args.seed + 1)
    trivial = np.clip(train.mean(axis=0, keepdims=True) + rng.normal(size=(len(test),) + test.shape[1:])
                      * train.std(axis=0, keepdims=True), 0.0, 1.0)
    generated = generate(method, len(test), test.shape[1:3], args.seed)

    classifier, accuracy = train_city_classifier(train_pixels, cities, args.classifier_epochs, args.seed)
    spaces = {f"city classifier ({len(names)} cities, train accuracy {accuracy:.2f})":
              lambda p: np.asarray(classifier.predict(p.astype(np.float32), verbose=0))}
    if args.feature_run:
        vae = CKMDiffMethod.from_run(args.feature_run).model_.vae
        spaces[f"VAE of {args.feature_run}"] = lambda p: np.asarray(vae.encode(p.astype(np.float32))).reshape(
            len(p), -1)
    if args.inception_weights:
        from ckmsim.metrics.fid import InceptionFeatureExtractor

        inception = InceptionFeatureExtractor(args.inception_weights)
        spaces["Inception-v3 (FID)"] = lambda p: inception(p[..., 0])
    references = {name: features(test) for name, features in spaces.items()}
    rows = [("CKMDiff generation (S = %d)" % args.steps, generated), ("real maps, validation city", val),
            ("real maps, training cities", train), ("training mean + Gaussian noise", trivial)]
    print(f"Fréchet distances to {len(test)} held-out maps on features of networks trained here "
          f"(not Inception unless its column says so: comparable within a column only)\n")
    print("| set | " + " | ".join(spaces) + " | mean pixel | share of pixels < 0.05 |")
    print("|---|" + "---:|" * (len(spaces) + 2))
    for name, pixels in rows:
        distances = " | ".join(f"{fid_from_features(features(pixels), references[space]):.2f}"
                               for space, features in spaces.items())
        print(f"| {name} | {distances} | {pixels.mean():.3f} | {np.mean(pixels < 0.05):.3f} |")
    print("| held-out city itself (reference) | " + " | ".join("0" for _ in spaces) +
          f" | {test.mean():.3f} | {np.mean(test < 0.05):.3f} |")


if __name__ == "__main__":
    main()

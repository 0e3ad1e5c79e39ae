"""tf.data pipelines over a dataset store: shapes, encodings against the truth, seeds, splits, laziness."""

from __future__ import annotations

import numpy as np
import pytest

from ckmsim.data.pipeline import GainEncoder, PathEncoder, pair_generator, pairs_dataset
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import BoxMask, Degradation, GaussianNoise, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import gain_db_to_pixel, pixel_to_angle_deg, pixel_to_gain_db

N = 16
SPLITS = ["train", "train", "val", "test", "train"]


def _synthetic_sample(rng, grid: Grid) -> dict:
    """Arrays of one store sample with a smooth gain field, two paths and a building block."""
    building = np.zeros(grid.shape, dtype=bool)
    building[3:6, 9:13] = True
    yy, xx = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    gain = -80.0 - 1.5 * np.hypot(yy - 4, xx - 4) + rng.normal(0, 1, grid.shape)
    path_gain = np.stack([gain - 1.0, gain - 9.0])
    az = rng.uniform(-180, 180, (2,) + grid.shape)
    el = rng.uniform(-30, 30, (2,) + grid.shape)
    arrays = {"gain_db": (("y", "x"), np.where(building, np.nan, gain)),
              "building": (("y", "x"), building), "los": (("y", "x"), (yy + xx) < 10),
              "path_gain_db": (("path", "y", "x"), path_gain), "aoa_az_deg": (("path", "y", "x"), az),
              "aoa_el_deg": (("path", "y", "x"), el), "toa_s": (("path", "y", "x"), np.full((2,) + grid.shape, 1e-7)),
              "tx_position_m": (("xyz",), np.array([grid.x_m[4], grid.y_m[4], 10.0]))}
    return {name: (dims, np.asarray(values, dtype=np.float32) if values.dtype.kind == "f" else values)
            for name, (dims, values) in arrays.items()}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipeline") / "store"
    header = {"name": "synthetic", "num_planned": len(SPLITS), "ckmsim_version": "test", "versions": {},
              "config": {"tile_cells": N, "ray_tracing": {"frequency_hz": 28e9}}}
    created = DatasetStore.create(path, header)
    rng = np.random.default_rng(11)
    grid = Grid(0.0, 0.0, N, N, 2.0, 1.5)
    for index, split in enumerate(SPLITS):
        created.append(_synthetic_sample(rng, grid), {"id": f"s{index}", "scene": "synthetic", "split": split,
                                                      "grid": grid.to_dict()})
    return DatasetStore.open(path)


def test_gain_pairs_have_the_signature_and_decode_to_the_truth(store):
    degradation = Degradation([Subsample(2)])
    encoder = GainEncoder(priors=("mask", "building"))
    pairs = list(pair_generator(store, degradation, encoder, split=None, shuffle=False))
    assert len(pairs) == len(SPLITS)
    for index, (x, y) in enumerate(pairs):
        truth = store.ckm(index)
        building = truth["building"].values
        assert x.shape == (N, N, 3) and y.shape == (N, N, 1) and x.dtype == y.dtype == np.float32
        np.testing.assert_allclose(pixel_to_gain_db(y[..., 0])[~building], truth["gain_db"].values[~building],
                                   atol=1e-3)
        lattice = np.zeros((N, N), dtype=bool)
        lattice[::2, ::2] = True
        np.testing.assert_array_equal(x[..., 1] == 1, lattice & ~building)
        np.testing.assert_array_equal(x[..., 2] == 0, building)
        np.testing.assert_allclose(x[..., 0][x[..., 1] == 1], y[..., 0][x[..., 1] == 1], atol=1e-6)
        assert np.all(x[..., 0][x[..., 1] == 0] == 0)


def test_path_pairs_follow_esrresnet_channels(store):
    encoder = PathEncoder(path=1, priors=("los", "building", "bs_gaussian"))
    x, y = next(pair_generator(store, Degradation([Subsample(2)]), encoder, split=None, shuffle=False))
    truth = store.ckm(0)
    assert x.shape == (N, N, 5) and y.shape == (N, N, 2)
    open_cells = ~truth["building"].values
    np.testing.assert_allclose(pixel_to_gain_db(y[..., 0])[open_cells], truth["path_gain_db"].values[1][open_cells],
                               atol=1e-3)
    np.testing.assert_allclose(pixel_to_angle_deg(y[..., 1])[open_cells], truth["aoa_az_deg"].values[1][open_cells],
                               atol=1e-3)
    assert x[4, 4, 4] == pytest.approx(1.0)  # BS Gaussian peaks at the transmitter's cell
    np.testing.assert_array_equal(x[..., 2], (truth["los"].values & open_cells).astype(np.float32))


def test_epochs_reshuffle_and_redraw_but_a_seed_repeats_itself(store):
    degradation = Degradation([BoxMask(size=6), GaussianNoise(std_px=30 / 255)])
    encoder = GainEncoder(priors=("mask",))
    first = list(pair_generator(store, degradation, encoder, split="train", seed=5, epochs=2))
    again = list(pair_generator(store, degradation, encoder, split="train", seed=5, epochs=2))
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    epoch0, epoch1 = first[:3], first[3:]
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(epoch0, epoch1))
    # Only the three training samples are visited, each once per epoch.
    train_targets = sorted(gain_db_to_pixel(store.ckm(i)["gain_db"].values, store.ckm(i)["building"].values).sum()
                           for i in store.indices("train"))
    for epoch in (epoch0, epoch1):
        np.testing.assert_allclose(sorted(float(y.sum()) for _, y in epoch), train_targets, rtol=1e-5)


def test_tf_dataset_batches_and_reads_lazily(store, monkeypatch):
    reads = []
    original = DatasetStore.sample

    def counting(self, index):
        reads.append(index)
        return original(self, index)

    monkeypatch.setattr(DatasetStore, "sample", counting)
    dataset = pairs_dataset(store, Degradation([Subsample(4)]), GainEncoder(), split=None, batch_size=2,
                            shuffle=False, prefetch=1)
    x, y = next(iter(dataset))
    assert tuple(x.shape) == (2, N, N, 3) and tuple(y.shape) == (2, N, N, 1)
    assert len(reads) < len(SPLITS)
    batches = list(dataset)
    assert [int(b[0].shape[0]) for b in batches] == [2, 2, 1]


def test_bad_arguments_are_named(store):
    with pytest.raises(CkmsimError, match="prior"):
        GainEncoder(priors=("buildings",))
    with pytest.raises(CkmsimError, match="no sample in split"):
        next(pair_generator(store.__class__(store.path, {**store.manifest, "samples": [
            {**r, "split": "train"} for r in store.records]}), Degradation(), GainEncoder(), split="test"))
    with pytest.raises(CkmsimError, match="path 2"):
        next(pair_generator(store, Degradation(), PathEncoder(path=2), split=None))
    with pytest.raises(CkmsimError, match="batch_size"):
        pairs_dataset(store, Degradation(), GainEncoder(), batch_size=0)

"""tf.data pipelines: stream (observation, target) tensor pairs of one task from a dataset store.

A sample is read from the zarr store only when the pipeline reaches it (nothing else is held in memory),
degraded with the task's :class:`~ckmsim.maps.degrade.Degradation`, and encoded for a network by an
*encoder* ``(observation, truth) -> (x [y, x, c_in], y [y, x, c_out])``. Randomness is explicit: epoch ``e``
visits the samples in the order of ``default_rng([seed, e])`` and degrades sample ``i`` with the generator
``default_rng([seed, e, i])``, so every epoch sees new masks and noise, and a run is reproducible.

Two encoders cover the papers' inputs:

- :class:`GainEncoder` (CKMDiff, RadioUNet-like): observed gain pixels (0 where unobserved), the observation
  mask and optional priors -> the true gain pixels.
- :class:`PathEncoder` (E-SRResNet, one path ``l``): observed PGM and PAM pixels of path ``l``, the LoS map
  (if asked), the binary building map and the BS Gaussian map -> the true PGM and PAM pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Degradation, Observation
from ckmsim.maps.pixels import angle_deg_to_pixel, gain_db_to_pixel
from ckmsim.maps.priors import BS_GAUSSIAN_VARIANCE_CELLS2, bs_gaussian_map, building_map, los_map

#: Priors an encoder may append to its input, by name.
PRIORS = ("building", "los", "bs_gaussian", "mask")


def _prior(name: str, observation: Observation, truth, variance_cells2: float) -> np.ndarray:
    """One prior channel ``[num_y, num_x]``, float32. ``los`` comes from the truth: in E-SRResNet it is a
    map the network is given, derived from the environment, not measured."""
    if name == "building":
        return building_map(observation.building)
    if name == "los":
        return los_map(truth)
    if name == "bs_gaussian":
        return bs_gaussian_map(truth, variance_cells2=variance_cells2)
    return observation.observed.astype(np.float32)


def _check_priors(priors: tuple[str, ...]) -> None:
    unknown = [p for p in priors if p not in PRIORS]
    if unknown:
        raise CkmsimError(f"Unknown prior(s) {unknown}; expected a subset of {list(PRIORS)}")


@dataclass(frozen=True)
class GainEncoder:
    """Channel-gain task: input ``[gain pixel, *priors]``, target ``[gain pixel]`` (CKMImageNet mapping).

    Unobserved cells are 0 in the gain channel; the ``mask`` prior tells a network which zeros are measured.
    """

    priors: tuple[str, ...] = ("mask", "building")
    variance_cells2: float = BS_GAUSSIAN_VARIANCE_CELLS2

    def __post_init__(self):
        _check_priors(self.priors)

    @property
    def required_layers(self) -> tuple[str, ...]:
        """CKM layers of the truth this encoder reads (``los`` only with the LoS prior)."""
        return ("gain_db", "building") + (("los",) if "los" in self.priors else ())

    @property
    def num_input_channels(self) -> int:
        return 1 + len(self.priors)

    @property
    def num_target_channels(self) -> int:
        return 1

    def __call__(self, observation: Observation, truth) -> tuple[np.ndarray, np.ndarray]:
        building = observation.building
        observed = np.where(observation.observed, observation.values["gain_db"].values, np.nan)
        channels = [gain_db_to_pixel(observed, building)]
        channels += [_prior(name, observation, truth, self.variance_cells2) for name in self.priors]
        target = gain_db_to_pixel(truth["gain_db"].values, building)
        return np.stack(channels, axis=-1).astype(np.float32), target[..., None].astype(np.float32)


@dataclass(frozen=True)
class PathEncoder:
    """Per-path task of E-SRResNet: input ``[PGM_l, PAM_l, *priors]``, target ``[PGM_l, PAM_l]``.

    PGM is ``path_gain_db`` and PAM the BS-side azimuth ``aoa_az_deg`` of path ``path`` (CKMImageNet
    mappings: gain -250..-50 dB and angle -200..180 deg, building cells at the -200 deg code). The paper's
    primary-path input has 5 channels (``priors=("los", "building", "bs_gaussian")``), the secondary 4 (no
    LoS).
    """

    path: int = 0
    priors: tuple[str, ...] = ("los", "building", "bs_gaussian")
    variance_cells2: float = BS_GAUSSIAN_VARIANCE_CELLS2

    def __post_init__(self):
        _check_priors(self.priors)
        if not (isinstance(self.path, int) and self.path >= 0):
            raise CkmsimError(f"path must be an integer >= 0. Received: path={self.path!r}")

    @property
    def required_layers(self) -> tuple[str, ...]:
        """CKM layers of the truth this encoder reads."""
        return ("path_gain_db", "aoa_az_deg", "building") + (("los",) if "los" in self.priors else ())

    @property
    def num_input_channels(self) -> int:
        return 2 + len(self.priors)

    @property
    def num_target_channels(self) -> int:
        return 2

    def _pixels(self, gain_db: np.ndarray, az_deg: np.ndarray, building: np.ndarray) -> list[np.ndarray]:
        return [gain_db_to_pixel(gain_db, building), angle_deg_to_pixel(az_deg, building)]

    def __call__(self, observation: Observation, truth) -> tuple[np.ndarray, np.ndarray]:
        if "path" not in truth.dims or self.path >= truth.sizes["path"]:
            raise CkmsimError(f"The dataset has {truth.sizes.get('path', 0)} path layer(s); PathEncoder needs "
                              f"path {self.path}")
        building = observation.building
        seen = observation.observed
        values = observation.values
        observed = self._pixels(np.where(seen, values["path_gain_db"].values[self.path], np.nan),
                                np.where(seen, values["aoa_az_deg"].values[self.path], np.nan), building)
        # Unobserved cells are 0 in both channels (the angle code of "no information"), as in the gain task.
        observed = [np.where(seen, channel, 0.0) for channel in observed]
        channels = observed + [_prior(name, observation, truth, self.variance_cells2) for name in self.priors]
        target = self._pixels(truth["path_gain_db"].values[self.path], truth["aoa_az_deg"].values[self.path],
                              building)
        return np.stack(channels, axis=-1).astype(np.float32), np.stack(target, axis=-1).astype(np.float32)


def pair_generator(store: DatasetStore, degradation: Degradation, encoder, split: str | None = None,
                   shuffle: bool = True, seed: int = 0, epochs: int = 1):
    """Python generator of ``(x, y)`` numpy pairs (the body of :func:`pairs_dataset`), ``epochs`` passes.

    Input
    -----
    store : DatasetStore
    degradation : Degradation, the task's ``A`` and noise
    encoder : callable ``(observation, truth) -> (x [y, x, c_in], y [y, x, c_out])``
    split : "train" | "val" | "test" | None (all samples)
    shuffle : bool
    seed : int
    epochs : int
    """
    indices = store.indices(split)
    if not len(indices):
        raise CkmsimError(f"Dataset '{store.path}' has no sample in split {split!r}")
    store.require_layers(getattr(encoder, "required_layers", ()), type(encoder).__name__)
    for epoch in range(int(epochs)):
        order = np.random.default_rng([seed, epoch]).permutation(indices) if shuffle else indices
        for index in order:
            truth = store.ckm(int(index))
            observation = degradation(truth, seed=np.random.default_rng([seed, epoch, int(index)]))
            yield encoder(observation, truth)


def pairs_dataset(store: DatasetStore, degradation: Degradation, encoder, split: str | None = "train",
                  batch_size: int = 8, shuffle: bool = True, seed: int = 0, epochs: int = 1,
                  prefetch: int = 2):
    """A ``tf.data.Dataset`` of batched ``(x [batch, y, x, c_in], y [batch, y, x, c_out])`` float32 pairs.

    See :func:`pair_generator` for the arguments; ``prefetch`` batches are prepared ahead of the consumer.
    """
    import tensorflow as tf

    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise CkmsimError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    if not len(store):
        raise CkmsimError(f"Dataset '{store.path}' holds no sample yet")
    # Fail here, not inside tf.data's generator thread where the message is buried in a traceback.
    store.require_layers(getattr(encoder, "required_layers", ()), type(encoder).__name__)
    grid = store.records[0]["grid"]
    shape = (int(grid["num_y"]), int(grid["num_x"]))
    signature = (tf.TensorSpec(shape + (encoder.num_input_channels,), tf.float32),
                 tf.TensorSpec(shape + (encoder.num_target_channels,), tf.float32))
    dataset = tf.data.Dataset.from_generator(
        lambda: pair_generator(store, degradation, encoder, split, shuffle, seed, epochs),
        output_signature=signature)
    return dataset.batch(batch_size).prefetch(prefetch)

r"""CKMDiff's tensors: the truth as gain pixels, the degraded observation as its 3-channel condition image
(Sec. IV-E, "environment-aware feature emphasis"), and Alg. 1's stream of examples with a random degradation
per example.

The condition image ``[H, W, 3]`` (:meth:`CKMDiffEncoding.condition`):

- channel 0, the observed gain as pixels on the full grid. The paper feeds the low-resolution or masked
  image itself; a Swin encoder with patch embedding needs the full grid, so ckmsim places the observation on it
  with a classical fill (``fill``): ``"baseline"`` (default) uses ckmsim's own best interpolator for the
  observation's sampling -- :class:`~ckmsim.baselines.interpolation.Bicubic` for a down-sampled lattice,
  :class:`~ckmsim.baselines.interpolation.KNN`'s estimate otherwise (:func:`knn_fill`) -- so the network starts from what interpolation
  already knows and spends its capacity on what it does not; ``"zeros"`` leaves unobserved cells at 0 (the
  paper's masked image). With no observed cell (generation, ``A = 0``) the channel is 0.
- channel 1, the building image: 1 on building cells, 0 elsewhere, from the observation's building prior.
  The paper derives it from the image's black pixels ("preserving the black regions in the channel
  knowledge data"); a ckmsim observation carries the full building map as a prior, which every classical
  baseline of the same study uses too (an interpolator leaves building cells out), so CKMDiff takes it
  from there.
- channel 2, the building edges: Canny's detector (scikit-image, ``sigma = 1``) on channel 1.

Gains become pixels over ``gain_range_db`` (buildings 0, as CKMImageNet's black); the paper's datasets use
``CKMIMAGENET_GAIN_RANGE_DB`` and ``RADIOMAPSEER_GAIN_RANGE_DB`` (:mod:`ckmsim.maps.pixels`, eqs. (27)-(28)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ckmsim.baselines.interpolation import Bicubic, idw_mean
from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import dihedral_ckm
from ckmsim.maps.degrade import Degradation, Observation
from ckmsim.maps.pixels import GainRangeCoding

#: How the condition's gain channel covers unobserved cells.
FILLS = ("baseline", "zeros")
#: ckmsim's 28 GHz gain-only tiles (64 m, APs at 10 m): strongest cells near -78 dB, deep shadow to the floor.
DEFAULT_GAIN_RANGE_DB = (-170.0, -70.0)
#: Channels of the condition image.
NUM_CONDITION_CHANNELS = 3
#: The augmentation draws k in 0..7: k % 4 quarter turns, then a column flip if k >= 4. The same symmetry in
#: the bit numbering of :func:`~ckmsim.maps.ckm.dihedral_ckm` (kept so that a seed draws what it drew in the
#: runs of experiments/ckmdiff/RESULTS.md, which used the rotation numbering).
ROTATION_TO_TRANSFORM = (0, 6, 3, 5, 1, 7, 2, 4)
#: Neighbours of the KNN fill (ckmsim's KNN default).
KNN_NEIGHBOURS = 4


@dataclass(frozen=True)
class CKMDiffEncoding(GainRangeCoding):
    """How CKMs and observations become CKMDiff's pixels and back (see the module docstring)."""

    gain_range_db: tuple[float, float] = DEFAULT_GAIN_RANGE_DB
    fill: str = "baseline"
    canny_sigma: float = 1.0

    CODING_LABEL = "CKMDiff encoding"

    def __post_init__(self):
        self._check_gain_range()
        if self.fill not in FILLS:
            raise CkmsimError(f"fill must be one of {list(FILLS)}. Received: fill={self.fill!r}")
        if not (isinstance(self.canny_sigma, (int, float)) and self.canny_sigma > 0):
            raise CkmsimError(f"canny_sigma must be a positive number. Received: canny_sigma={self.canny_sigma!r}")

    def target(self, truth: xr.Dataset) -> np.ndarray:
        """The truth's gain as ``[H, W, 1]`` pixels."""
        return self.gain_pixels(truth["gain_db"].values, truth["building"].values)[..., None]

    # ------------------------------------------------------------------------------------------ condition
    def condition(self, observation: Observation) -> np.ndarray:
        """The 3-channel condition image ``[H, W, 3]`` float32 of an observation (module docstring)."""
        from skimage.feature import canny

        shape = observation.grid.shape
        observed = np.asarray(observation.observed, dtype=bool)
        image = np.zeros(shape + (NUM_CONDITION_CHANNELS,), dtype=np.float32)
        if not observed.any():
            return image
        image[..., 0] = self._filled_gain_pixels(observation)
        buildings = np.asarray(observation.building, dtype=np.float32)
        image[..., 1] = buildings
        image[..., 2] = canny(buildings.astype(np.float64), sigma=float(self.canny_sigma))
        return image

    def _filled_gain_pixels(self, observation: Observation) -> np.ndarray:
        gain_db = observation.values["gain_db"].values
        if self.fill == "zeros":
            return self.gain_pixels(np.where(observation.observed, gain_db, np.nan))
        if observation.factor is not None:
            filled = Bicubic().predict(observation)["gain_db"].values
        else:
            filled = knn_fill(gain_db, np.isfinite(gain_db) & observation.observed)
        return self.gain_pixels(filled, observation.building)


def knn_fill(values: np.ndarray, valid: np.ndarray, k: int = KNN_NEIGHBOURS) -> np.ndarray:
    """:class:`~ckmsim.baselines.interpolation.KNN`'s estimate (inverse-distance mean of the ``k`` nearest
    valid cells, a valid cell keeps its value) by brute force: ``[num_y, num_x] -> [num_y, num_x]``.

    The weighting is KNN's own (:func:`~ckmsim.baselines.interpolation.idw_mean`, power 1); only the search
    differs. KNN searches a SciPy ``cKDTree``, whose build recursed without end (SIGSEGV) when called from the
    threads that feed ``tf.data`` (TensorFlow 2.19; the same points build fine in the main thread); a map of
    a few thousand cells needs no tree. Among cells tied at the k-th distance the choice may differ from
    KNN's (equal weights, so only the tied values' mean can differ)."""
    cells = np.indices(values.shape).reshape(2, -1).T.astype(np.float64)
    points = cells[valid.ravel()]
    samples = values[valid]
    k = min(k, len(points))
    # [num_cells, num_points] distances; cells are few (32 x 32 .. 256 x 256 -> chunked)
    out = np.empty(len(cells))
    for start in range(0, len(cells), 4096):
        d = np.linalg.norm(cells[start:start + 4096, None, :] - points[None], axis=-1)
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        out[start:start + len(d)] = idw_mean(np.take_along_axis(d, nearest, axis=1), samples[nearest], power=1.0)
    return out.reshape(values.shape)


# ----------------------------------------------------------------------------------------------------------
# Examples (Alg. 1, line 5)
# ----------------------------------------------------------------------------------------------------------

def load_truths(store: DatasetStore, split: str | None) -> list[xr.Dataset]:
    """Every gain CKM of ``split`` (gain and building layers), loaded once."""
    indices = store.indices(split)
    if len(indices) == 0:
        raise CkmsimError(f"Dataset '{store.path}' has no sample in split {split!r}")
    return [store.ckm(int(i))[["gain_db", "building"]] for i in indices]


def example(truth: xr.Dataset, degradation: Degradation | None, encoding: CKMDiffEncoding,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(x [H, W, 1], cond [H, W, 3])`` for one truth and one degradation (None: generation, ``A = 0``)."""
    x = encoding.target(truth)
    if degradation is None:
        return x, np.zeros(x.shape[:2] + (NUM_CONDITION_CHANNELS,), dtype=np.float32)
    return x, encoding.condition(degradation(truth, seed=rng))


def example_generator(truths: list[xr.Dataset], degradations: list[Degradation | None],
                      encoding: CKMDiffEncoding, seed: int = 0, augment: bool = False, epochs: int | None = 1,
                      shuffle: bool = True):
    """Every truth once per epoch with a degradation drawn from ``degradations`` (Alg. 1: "A is a random
    degradation matrix"); example ``i`` of epoch ``e`` draws from ``default_rng([seed, e, i])``."""
    if not degradations:
        raise CkmsimError("At least one degradation (or None for generation) is needed")
    epoch = 0
    while epochs is None or epoch < epochs:
        order = np.random.default_rng([seed, epoch]).permutation(len(truths)) if shuffle else range(len(truths))
        for i in order:
            rng = np.random.default_rng([seed, epoch, int(i)])
            truth = truths[int(i)]
            if augment and truth.sizes["y"] == truth.sizes["x"]:
                truth = dihedral_ckm(truth, ROTATION_TO_TRANSFORM[int(rng.integers(8))])
            degradation = degradations[int(rng.integers(len(degradations)))]
            yield example(truth, degradation, encoding, rng)
        epoch += 1


def diffusion_dataset(truths, degradations, encoding: CKMDiffEncoding, batch_size: int, seed: int = 0,
                      augment: bool = False, epochs: int | None = None, shuffle: bool = True):
    """``tf.data`` of ``({"x": [B, H, W, 1], "cond": [B, H, W, 3]}, zeros [B])`` for :class:`LatentDiffusion`."""
    import tensorflow as tf

    shape = (truths[0].sizes["y"], truths[0].sizes["x"])
    signature = (tf.TensorSpec(shape + (1,), tf.float32), tf.TensorSpec(shape + (NUM_CONDITION_CHANNELS,), tf.float32))
    data = _endless(tf, lambda: example_generator(truths, degradations, encoding, seed, augment, None, shuffle),
                    signature, epochs, len(truths))
    data = data.map(lambda x, c: ({"x": x, "cond": c}, tf.zeros(())))
    return _batched(tf, data, batch_size, epochs, len(truths))


def _endless(tf, make_generator, signature, epochs: int | None, num_truths: int):
    """A ``from_generator`` dataset over an endless generator, cut to ``epochs`` passes with ``take``."""
    data = tf.data.Dataset.from_generator(make_generator, output_signature=signature)
    return data if epochs is None else data.take(int(epochs) * num_truths)


def _batched(tf, data, batch_size: int, epochs: int | None, num_truths: int):
    data = data.batch(int(batch_size))
    if epochs is not None:
        data = data.apply(tf.data.experimental.assert_cardinality(-(-epochs * num_truths // int(batch_size))))
    return data.prefetch(2)


def vae_dataset(truths, encoding: CKMDiffEncoding, batch_size: int, seed: int = 0, augment: bool = False,
                epochs: int | None = None, shuffle: bool = True):
    """``tf.data`` of ``(x, x)`` pixel batches ``[B, H, W, 1]`` for the VAE."""
    import tensorflow as tf

    def gen():
        for x, _ in example_generator(truths, [None], encoding, seed, augment, None, shuffle):
            yield x

    shape = (truths[0].sizes["y"], truths[0].sizes["x"], 1)
    data = _endless(tf, gen, tf.TensorSpec(shape, tf.float32), epochs, len(truths))
    return _batched(tf, data.map(lambda x: (x, x)), batch_size, epochs, len(truths))

r"""Fréchet Inception Distance between sets of CKM images, CKMDiff eq. (31).

.. math::
    \mathrm{FID} = \|\boldsymbol{\mu}_r - \boldsymbol{\mu}_c\|^2
                   + \mathrm{Tr}\big(\boldsymbol{\Sigma}_r + \boldsymbol{\Sigma}_c
                                     - 2 (\boldsymbol{\Sigma}_r \boldsymbol{\Sigma}_c)^{1/2}\big)

with the means and covariances of Inception-v3 features (the 2048-d global-average-pooled output of the
last inception block) of the real (ray-traced) and the constructed maps. FID compares two *sets* of maps, so
it is not a per-map score of :func:`~ckmsim.metrics.map_metrics.map_scores`; it is computed once per method
over a test split.

The Inception weights are a file the user supplies (:class:`InceptionFeatureExtractor`): ckmsim never
downloads them. Keras' own ImageNet weights (``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5``)
are not the TF-slim weights of the original FID code (``pytorch-fid``, TTUR), so FID values are comparable
between methods scored with the same weights file, not with numbers printed in papers.

Only :class:`InceptionFeatureExtractor` needs TensorFlow/Keras; it imports them when it is built, so
importing this module stays cheap (and Mitsuba keeps its lead in the import order, see ``ckmsim/__init__``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import linalg

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_finite_number, is_whole_number

#: Side of Inception-v3's input images [pixels].
INCEPTION_SIZE = 299
#: Length of Inception-v3's average-pooled feature vector.
INCEPTION_FEATURE_DIM = 2048
#: Relative offset added to both covariances when ``sqrtm`` of their product fails (see frechet_distance).
SQRTM_EPS = 1e-6
# Largest imaginary part of diag(sqrtm(S1 S2)), relative to the mean variance, accepted as round-off. The
# original FID code allows 1e-3 absolute on features of variance ~0.1-1; relative keeps it scale-free.
_IMAG_RTOL = 1e-3


# ----------------------------------------------------------------------------------------------------------
# The Fréchet distance of two Gaussians
# ----------------------------------------------------------------------------------------------------------

def _mean_and_covariance(mu, sigma, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    """``mu [d]``, ``sigma [d, d]`` as float64 (scalars allowed for ``d = 1``); raise naming the bad argument."""
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise CkmsimError(f"mu{suffix} must be a vector [d]. Received: mu{suffix}.shape={mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise CkmsimError(f"sigma{suffix} must be [d, d] = {(mu.size, mu.size)} to match mu{suffix}. "
                          f"Received: sigma{suffix}.shape={sigma.shape}")
    for name, value in ((f"mu{suffix}", mu), (f"sigma{suffix}", sigma)):
        if not np.all(np.isfinite(value)):
            raise CkmsimError(f"{name} has {int(np.count_nonzero(~np.isfinite(value)))} NaN/inf entr(y/ies)")
    return mu, sigma


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm`` without its singular-matrix warning: the caller checks the result itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return linalg.sqrtm(matrix)


def _sqrtm_acceptable(root: np.ndarray, scale: float) -> bool:
    """True if ``sqrtm``'s result is finite and its diagonal is real up to round-off (relative to ``scale``)."""
    if not np.all(np.isfinite(root)):
        return False
    return not np.iscomplexobj(root) or np.max(np.abs(np.diagonal(root).imag)) <= _IMAG_RTOL * scale


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = SQRTM_EPS) -> float:
    r"""Fréchet (2-Wasserstein) distance squared between two Gaussians, CKMDiff eq. (31).

    .. math::
        d^2 = \|\boldsymbol{\mu}_1 - \boldsymbol{\mu}_2\|^2
              + \mathrm{Tr}\big(\boldsymbol{\Sigma}_1 + \boldsymbol{\Sigma}_2
                                - 2 (\boldsymbol{\Sigma}_1 \boldsymbol{\Sigma}_2)^{1/2}\big)

    Computed in float64 with ``scipy.linalg.sqrtm``, as the original FID code does. ``S1 S2`` of two
    covariances has real non-negative eigenvalues, so ``sqrtm`` returns a real matrix up to round-off; when
    the product is (near) singular -- always the case for covariances of fewer samples than dimensions --
    ``sqrtm`` may return NaN/inf or a visibly complex diagonal. Then both covariances get ``eps`` times their
    mean variance added to the diagonal and the root is taken again (the standard fix, made relative so
    that scaling the features by ``c`` scales the distance by ``c^2``). The real part of the root is kept.
    The distance is clipped at 0: it is a squared distance, and identical inputs can give ``-1e-13``.

    Input
    -----
    mu1, mu2 : [d], float
        Means (scalars for ``d = 1``).
    sigma1, sigma2 : [d, d], float
        Covariance matrices (symmetric positive semi-definite).
    eps : float
        Relative diagonal offset of the retry, > 0.

    Output
    ------
    distance : float
        In the squared unit of the features; 0 for identical Gaussians.
    """
    mu1, sigma1 = _mean_and_covariance(mu1, sigma1, "1")
    mu2, sigma2 = _mean_and_covariance(mu2, sigma2, "2")
    if mu1.size != mu2.size:
        raise CkmsimError(f"mu1 has dimension {mu1.size}, but mu2 has dimension {mu2.size}")
    if not is_finite_number(eps) or eps <= 0:
        raise CkmsimError(f"eps must be a finite number > 0. Received: eps={eps!r}")
    dim = mu1.size
    # Mean variance of the two distributions: the scale of the root's entries, for the tolerance and offset
    scale = (np.trace(sigma1) + np.trace(sigma2)) / (2 * dim)
    root = _sqrtm(sigma1 @ sigma2)
    if not _sqrtm_acceptable(root, scale):
        offset = eps * scale * np.eye(dim)
        root = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not _sqrtm_acceptable(root, scale):
            raise CkmsimError("sqrtm(sigma1 @ sigma2) is not real even after a diagonal offset "
                              f"(eps={eps}); are sigma1 and sigma2 covariance matrices (symmetric, PSD)?")
    trace_root = float(np.trace(np.real(root)))
    distance = float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root)
    return max(distance, 0.0)


def _checked_features(features, name: str) -> np.ndarray:
    """``features [n, d]`` as float64 with ``n >= 2``, all finite; raise naming the argument."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise CkmsimError(f"{name} must be [n, d]. Received: {name}.shape={features.shape}")
    if features.shape[0] < 2:
        raise CkmsimError(f"{name} needs at least 2 samples for a covariance. Received: {name}.shape="
                          f"{features.shape}")
    if not np.all(np.isfinite(features)):
        raise CkmsimError(f"{name} has {int(np.count_nonzero(~np.isfinite(features)))} NaN/inf value(s)")
    return features


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased sample covariance (``ddof = 1``, as the original FID code) of a feature set.

    Input
    -----
    features : [n, d], float
        One feature vector per image, ``n >= 2``.

    Output
    ------
    mu : [d], float64
    sigma : [d, d], float64
    """
    features = _checked_features(features, "features")
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1).reshape(features.shape[1], -1)


def fid_from_features(features1, features2) -> float:
    r"""Fréchet distance (eq. (31)) between the Gaussians fitted to two feature sets.

    Equals ``frechet_distance(*feature_statistics(features1), *feature_statistics(features2))``. When either
    set has no more samples than dimensions (the usual case: a few hundred maps, 2048 features) it is
    computed exactly without ``d x d`` matrices: with centred features ``A_k [n_k, d]`` and
    ``S_k = A_k^T A_k / (n_k - 1)``, the non-zero eigenvalues of ``S_1 S_2`` are the squared singular values
    of ``A_1 A_2^T`` divided by ``(n_1 - 1)(n_2 - 1)``, so

    .. math::
        \mathrm{Tr}(\boldsymbol{\Sigma}_1 \boldsymbol{\Sigma}_2)^{1/2}
        = \frac{\sum_i s_i(\mathbf{A}_1 \mathbf{A}_2^\mathsf{T})}{\sqrt{(n_1 - 1)(n_2 - 1)}}

    which needs no ``sqrtm`` of a singular matrix (and no ``eps``) and costs ``O(n_1 n_2 d)``.

    Input
    -----
    features1, features2 : [n1, d], [n2, d], float
        Feature vectors of the two image sets, ``n1, n2 >= 2``.

    Output
    ------
    fid : float
    """
    features1 = _checked_features(features1, "features1")
    features2 = _checked_features(features2, "features2")
    if features1.shape[1] != features2.shape[1]:
        raise CkmsimError(f"features1 has {features1.shape[1]} features per sample, but features2 has "
                          f"{features2.shape[1]}")
    num1, num2, dim = features1.shape[0], features2.shape[0], features1.shape[1]
    if min(num1, num2) > dim:
        return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    mu1, mu2 = features1.mean(axis=0), features2.mean(axis=0)
    centred1, centred2 = features1 - mu1, features2 - mu2
    trace1 = np.sum(centred1 ** 2) / (num1 - 1)
    trace2 = np.sum(centred2 ** 2) / (num2 - 1)
    # [n1, n2]
    cross = centred1 @ centred2.T
    trace_root = np.sum(linalg.svd(cross, compute_uv=False)) / np.sqrt((num1 - 1) * (num2 - 1))
    distance = float(np.sum((mu1 - mu2) ** 2) + trace1 + trace2 - 2.0 * trace_root)
    return max(distance, 0.0)


# ----------------------------------------------------------------------------------------------------------
# From CKM pixels to Inception inputs and features
# ----------------------------------------------------------------------------------------------------------

def _bilinear_matrix(num_in: int, num_out: int) -> np.ndarray:
    """``[num_out, num_in]`` weights of 1-D linear resampling with half-pixel centres, edges clamped.

    Output sample ``i`` sits at input coordinate ``(i + 0.5) num_in / num_out - 0.5``: the convention of
    ``tf.image.resize(method="bilinear", antialias=False)`` and of PyTorch's ``align_corners=False``.
    """
    position = np.clip((np.arange(num_out) + 0.5) * num_in / num_out - 0.5, 0.0, num_in - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, num_in - 1)
    frac = position - low
    weights = np.zeros((num_out, num_in))
    np.add.at(weights, (np.arange(num_out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(num_out), high), frac)
    return weights


def _checked_pixels(pixels, name: str) -> np.ndarray:
    """``pixels [n, y, x]`` as float64, finite and in [0, 1]; raise naming the argument."""
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 3 or min(pixels.shape) < 1:
        raise CkmsimError(f"{name} must be a stack of maps [n, y, x]. Received: {name}.shape={pixels.shape}")
    if not np.all(np.isfinite(pixels)):
        raise CkmsimError(f"{name} has {int(np.count_nonzero(~np.isfinite(pixels)))} NaN/inf value(s)")
    low, high = float(pixels.min()), float(pixels.max())
    if low < 0.0 or high > 1.0:
        raise CkmsimError(f"{name} must hold pixels in [0, 1] (ckmsim.maps.pixels.gain_db_to_pixel), not "
                          f"gains in dB. Received: {name} in [{low:g}, {high:g}]")
    return pixels


def inception_inputs(pixels, size: int = INCEPTION_SIZE) -> np.ndarray:
    """Single-channel CKM pixel maps -> Inception-v3 input images.

    Each map is resized bilinearly to ``size x size`` (half-pixel centres, no anti-aliasing, as
    ``tf.image.resize``), scaled from [0, 1] to Inception's [-1, 1] (what
    ``keras.applications.inception_v3.preprocess_input`` does to [0, 255]) and replicated to the three
    colour channels (a grey image).

    Input
    -----
    pixels : [n, num_y, num_x], float
        CKM pixels in [0, 1] (:func:`ckmsim.maps.pixels.gain_db_to_pixel`).
    size : int
        Output side [pixels].

    Output
    ------
    images : [n, size, size, 3], float32
        In [-1, 1].
    """
    pixels = _checked_pixels(pixels, "pixels")
    if not is_whole_number(size, minimum=1):
        raise CkmsimError(f"size must be a positive integer. Received: size={size!r}")
    rows = _bilinear_matrix(pixels.shape[1], int(size))
    cols = _bilinear_matrix(pixels.shape[2], int(size))
    # [n, size, size]: rows @ map @ cols^T resamples y then x (bilinear is separable)
    resized = np.einsum("ay,nyx,bx->nab", rows, pixels, cols, optimize=True)
    # [n, size, size, 3]
    return np.repeat((2.0 * resized - 1.0)[..., None], 3, axis=-1).astype(np.float32)


class InceptionFeatureExtractor:
    """Inception-v3 feature extractor for FID: ``keras.applications.InceptionV3(include_top=False,
    pooling="avg")`` with weights from a file the user supplies.

    The file is read with ``Model.load_weights``: Keras' ``inception_v3_weights_tf_dim_ordering_tf_kernels
    _notop.h5`` (legacy HDF5, the file ``weights="imagenet"`` would download) or a ``.weights.h5`` saved
    from this architecture (with or without its classification top). Nothing is downloaded.

    Parameters
    ----------
    weights_path : str or Path
        The weights file.
    batch_size : int
        Maps per forward pass, >= 1 (memory: about ``batch_size`` x 1 MiB of input plus activations).

    Input (call)
    ------------
    pixels : [n, num_y, num_x], float
        CKM pixels in [0, 1].

    Output (call)
    -------------
    features : [n, 2048], float64
    """

    def __init__(self, weights_path: str | Path, batch_size: int = 32):
        if not is_whole_number(batch_size, minimum=1):
            raise CkmsimError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
        self.weights_path = Path(weights_path)
        self.batch_size = int(batch_size)
        self.model_ = self._load(self.weights_path)

    @staticmethod
    def _load(path: Path):
        """Build InceptionV3 (no top, average pooling) and load ``path`` into it."""
        if not path.is_file():
            raise CkmsimError(f"Inception-v3 weights file '{path}' does not exist; FID needs the weights of "
                              f"keras.applications.InceptionV3(include_top=False) as a local file (ckmsim "
                              f"downloads nothing). Received: weights_path='{path}'")
        import keras  # lazily: TensorFlow start-up costs seconds and must follow Mitsuba's import

        model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                               input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
        try:
            # A mismatching file makes Keras warn once per layer before it raises; the error says it all
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.load_weights(str(path))
        except (ValueError, OSError, KeyError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CkmsimError(f"Inception-v3 weights file '{path}' does not fit "
                              f"keras.applications.InceptionV3(include_top=False): {first_line}") from None
        return model

    def __call__(self, pixels) -> np.ndarray:
        pixels = _checked_pixels(pixels, "pixels")
        features = []
        for start in range(0, len(pixels), self.batch_size):
            # [batch, 299, 299, 3]; resized per batch so memory stays bounded for long map stacks
            images = inception_inputs(pixels[start:start + self.batch_size])
            features.append(np.asarray(self.model_(images, training=False), dtype=np.float64))
        return np.concatenate(features, axis=0)


def fid_of_maps(pred_pixels, true_pixels, weights_path: str | Path, batch_size: int = 32) -> float:
    """FID (eq. (31)) between constructed and ground-truth CKM pixel maps, on Inception-v3 features.

    The two stacks may differ in count and map size (each map is resized to 299 x 299); FID compares the
    two distributions, so pairing does not matter.

    Input
    -----
    pred_pixels : [n_pred, num_y, num_x], float
        Constructed maps, pixels in [0, 1] (:func:`ckmsim.maps.pixels.gain_db_to_pixel`), ``n_pred >= 2``.
    true_pixels : [n_true, num_y, num_x], float
        Ground-truth maps, same encoding, ``n_true >= 2``.
    weights_path : str or Path
        Inception-v3 weights file (see :class:`InceptionFeatureExtractor`).
    batch_size : int
        Maps per forward pass.

    Output
    ------
    fid : float
        0 for identical stacks; lower is better.
    """
    pred_pixels = _checked_pixels(pred_pixels, "pred_pixels")
    true_pixels = _checked_pixels(true_pixels, "true_pixels")
    for name, stack in (("pred_pixels", pred_pixels), ("true_pixels", true_pixels)):
        if len(stack) < 2:
            raise CkmsimError(f"{name} needs at least 2 maps for a covariance. Received: {name}.shape="
                              f"{stack.shape}")
    extractor = InceptionFeatureExtractor(weights_path, batch_size=batch_size)
    return fid_from_features(extractor(true_pixels), extractor(pred_pixels))

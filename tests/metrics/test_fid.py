"""FID (CKMDiff eq. (31)): Fréchet distance closed forms, feature statistics, preprocessing, the extractor."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from ckmsim.errors import CkmsimError
from ckmsim.metrics.fid import (INCEPTION_FEATURE_DIM, InceptionFeatureExtractor, _bilinear_matrix,
                                feature_statistics, fid_from_features, fid_of_maps, frechet_distance,
                                inception_inputs)


def _random_covariance(rng, dim, rank=None):
    """[dim, dim] symmetric PSD matrix of the given rank (full by default)."""
    factor = rng.standard_normal((dim, rank or dim))
    return factor @ factor.T / dim


def _reference_distance(mu1, sigma1, mu2, sigma2):
    """eq. (31) via symmetric eigendecompositions: Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2)."""
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_root = np.sum(np.sqrt(np.clip(inner, 0, None)))
    return np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root


# ------------------------------------------------------------------------------------------------ closed forms
def test_identical_gaussians_give_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(6), _random_covariance(rng, 6)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-10)
    features = rng.standard_normal((40, 6))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-10)
    # Fewer samples than dimensions: the covariance is singular, the distance still 0
    features = rng.standard_normal((5, 30))
    assert fid_from_features(features, features) == pytest.approx(0.0, abs=1e-10)
    mu, sigma = feature_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_one_dimensional_and_diagonal_closed_form():
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2 with std devs 2 and 1
    assert frechet_distance(0.0, 4.0, 1.0, 1.0) == pytest.approx(2.0)
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 1.0])
    std1, std2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 0.0])
    expected = 0.25 + 0 + 9 + (4 + 0 + 0.25)
    assert frechet_distance(mu1, np.diag(std1 ** 2), mu2, np.diag(std2 ** 2)) == pytest.approx(expected)


def test_commuting_covariances_closed_form():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum (sqrt a - sqrt b)^2
    rng = np.random.default_rng(1)
    q = ortho_group.rvs(5, random_state=2)
    a, b = rng.uniform(0.1, 4.0, 5), rng.uniform(0.1, 4.0, 5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_symmetric_and_matches_eigen_reference_on_non_commuting_covariances():
    rng = np.random.default_rng(3)
    for rank in (None, 3):  # full rank, and a singular pair (sqrtm's hard case)
        mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
        sigma1, sigma2 = _random_covariance(rng, 8, rank), _random_covariance(rng, 8, rank)
        forward = frechet_distance(mu1, sigma1, mu2, sigma2)
        assert forward == pytest.approx(frechet_distance(mu2, sigma2, mu1, sigma1), rel=1e-6)
        assert forward == pytest.approx(_reference_distance(mu1, sigma1, mu2, sigma2), rel=1e-6)
        assert forward > 0.0


def test_sample_estimate_approaches_the_gaussian_distance():
    rng = np.random.default_rng(4)
    mu1, mu2 = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.5])
    sigma1, sigma2 = _random_covariance(rng, 3) + 0.5 * np.eye(3), _random_covariance(rng, 3)
    exact = frechet_distance(mu1, sigma1, mu2, sigma2)
    num = 40_000
    draws1 = rng.multivariate_normal(mu1, sigma1, num)
    draws2 = rng.multivariate_normal(mu2, sigma2, num)
    # n >> d: fid_from_features takes the covariance route here
    assert fid_from_features(draws1, draws2) == pytest.approx(exact, rel=0.03)
    # Few draws are far less accurate: the tolerance above is not loose enough to pass anything
    few = fid_from_features(draws1[:4], draws2[:4])
    assert abs(few - exact) > 0.03 * exact


def test_gram_route_equals_covariance_route_and_scales_quadratically():
    rng = np.random.default_rng(5)
    # n <= d takes the Gram route (no sqrtm); compare with the d x d covariance route
    features1 = rng.standard_normal((12, 40))
    features2 = 0.7 * rng.standard_normal((9, 40)) + 0.3
    gram = fid_from_features(features1, features2)
    covariance = frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    assert gram == pytest.approx(covariance, rel=1e-6)
    assert gram == pytest.approx(_reference_distance(*feature_statistics(features1),
                                                     *feature_statistics(features2)), rel=1e-6)
    assert fid_from_features(3 * features1, 3 * features2) == pytest.approx(9 * gram, rel=1e-9)


def test_feature_statistics():
    features = np.array([[1.0, 0.0], [3.0, 2.0], [2.0, 4.0]])
    mu, sigma = feature_statistics(features)
    np.testing.assert_allclose(mu, [2.0, 2.0])
    # ddof = 1: var x = (1 + 1 + 0) / 2, var y = (4 + 0 + 4) / 2, cov = (2 + 0 + 0) / 2
    np.testing.assert_allclose(sigma, [[1.0, 1.0], [1.0, 4.0]])
    assert mu.dtype == sigma.dtype == np.float64
    _, sigma_1d = feature_statistics(np.array([[1.0], [3.0]]))
    assert sigma_1d.shape == (1, 1) and sigma_1d[0, 0] == pytest.approx(2.0)


def test_bad_inputs_name_the_argument():
    with pytest.raises(CkmsimError, match="sigma2 must be"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(CkmsimError, match="mu2 has dimension 3"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(CkmsimError, match="sigma1 has 1 NaN"):
        frechet_distance(np.zeros(2), np.array([[1.0, np.nan], [0.0, 1.0]]), np.zeros(2), np.eye(2))
    with pytest.raises(CkmsimError, match="eps"):
        frechet_distance(0.0, 1.0, 0.0, 1.0, eps=0.0)
    with pytest.raises(CkmsimError, match="are sigma1 and sigma2 covariance matrices"):
        frechet_distance(np.zeros(2), np.diag([1.0, -1.0]), np.zeros(2), np.eye(2))  # not PSD
    with pytest.raises(CkmsimError, match="features needs at least 2"):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(CkmsimError, match="features2 must be"):
        fid_from_features(np.zeros((3, 4)), np.zeros(4))
    with pytest.raises(CkmsimError, match="features2 has 5"):
        fid_from_features(np.zeros((3, 4)), np.zeros((3, 5)))


# ------------------------------------------------------------------------------------------------ preprocessing
def test_bilinear_matrix_by_hand():
    # 2 -> 4 with half-pixel centres: sources at -0.25, 0.25, 0.75, 1.25, clamped to [0, 1]
    np.testing.assert_allclose(_bilinear_matrix(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    # 4 -> 2: sources at 0.5 and 2.5
    np.testing.assert_allclose(_bilinear_matrix(4, 2), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_allclose(_bilinear_matrix(5, 5), np.eye(5))


def test_inception_inputs_replicate_resize_and_scale():
    pixels = np.array([[[0.0, 1.0], [1.0, 0.5]]])
    images = inception_inputs(pixels, size=4)
    assert images.shape == (1, 4, 4, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(images[..., 0], images[..., 1])
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    # Corners keep the pixel values (edge clamping), mapped [0, 1] -> [-1, 1]
    np.testing.assert_allclose(images[0, [0, 0, -1, -1], [0, -1, 0, -1], 0], [-1.0, 1.0, 1.0, 0.0])
    # Cell (1, 1) sits at source (0.25, 0.25): weights 0.75^2, 0.75 * 0.25 (twice), 0.25^2
    pixel = 0.5625 * 0.0 + 0.1875 * 1.0 + 0.1875 * 1.0 + 0.0625 * 0.5
    assert images[0, 1, 1, 0] == pytest.approx(2 * pixel - 1)
    full = inception_inputs(np.full((2, 16, 12), 0.25))
    assert full.shape == (2, 299, 299, 3)
    np.testing.assert_allclose(full, -0.5, atol=1e-6)


def test_inception_inputs_reject_gains_in_db():
    with pytest.raises(CkmsimError, match=r"pixels in \[0, 1\].*Received: pixels in \[-120"):
        inception_inputs(np.full((1, 4, 4), -120.0))
    with pytest.raises(CkmsimError, match="pixels must be a stack"):
        inception_inputs(np.zeros((4, 4)))
    with pytest.raises(CkmsimError, match="size"):
        inception_inputs(np.zeros((1, 4, 4)), size=0)


# ------------------------------------------------------------------------------------------------ extractor
def test_missing_weights_file_is_named(tmp_path):
    path = tmp_path / "inception_notop.h5"
    with pytest.raises(CkmsimError, match="inception_notop.h5' does not exist"):
        InceptionFeatureExtractor(path)
    with pytest.raises(CkmsimError, match="does not exist"):
        fid_of_maps(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), path)
    with pytest.raises(CkmsimError, match="batch_size"):
        InceptionFeatureExtractor(path, batch_size=0)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """A ``.weights.h5`` file of a randomly initialised InceptionV3 (no top): real layout, no download."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(299, 299, 3))
    path = tmp_path_factory.mktemp("inception") / "random_inception.weights.h5"
    model.save_weights(path)
    return path


def test_inception_inputs_match_tf_image_resize():
    import tensorflow as tf

    maps = np.random.default_rng(6).random((2, 17, 10))
    expected = tf.image.resize(maps[..., None] * 2 - 1, (299, 299), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(inception_inputs(maps)[..., 0], expected, atol=1e-5)


# About 25 s on 2 CPU cores (TensorFlow start-up, two InceptionV3 builds, a dozen 299 x 299 forward passes)
@pytest.mark.large
def test_extractor_features_and_fid_of_identical_maps(random_inception_weights):
    rng = np.random.default_rng(7)
    maps = rng.random((3, 16, 16))
    extractor = InceptionFeatureExtractor(random_inception_weights, batch_size=2)
    features = extractor(maps)
    assert features.shape == (3, INCEPTION_FEATURE_DIM) and features.dtype == np.float64
    assert np.all(np.isfinite(features)) and np.ptp(features, axis=0).max() > 0  # inputs differ -> features do
    different = fid_from_features(features, extractor(rng.random((3, 16, 16))))
    assert different > 0.0
    assert fid_from_features(features, features) <= 1e-9 * different
    assert fid_from_features(features, extractor(maps[::-1])) <= 1e-6 * different  # order-blind, batch-blind


@pytest.mark.large
def test_fid_of_maps_identical_and_bad_file(random_inception_weights, tmp_path):
    maps = np.random.default_rng(8).random((2, 12, 12))
    assert fid_of_maps(maps, maps, random_inception_weights) == pytest.approx(0.0, abs=1e-12)
    junk = tmp_path / "junk.weights.h5"
    junk.write_text("not an HDF5 file")
    with pytest.raises(CkmsimError, match="junk.weights.h5' does not fit"):
        InceptionFeatureExtractor(junk)

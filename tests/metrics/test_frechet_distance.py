import numpy as np
import pytest
import scipy.linalg

from keras_aigc.metrics import (
    FeatureStatistics,
    FrechetDistance,
    frechet_distance,
    frechet_distance_from_features,
)


def closed_form(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def random_gaussian(rng, dim):
    a = rng.normal(size=(dim, dim))
    return rng.normal(size=dim), a @ a.T / dim + 0.5 * np.eye(dim)


def test_closed_form_of_known_gaussians():
    # Diagonal covariances: Tr(sqrt(S1 S2)) = sum(sqrt(d1 * d2)).
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1.0 + 4.0 + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected)


def test_samples_match_closed_form_within_sampling_error():
    rng = np.random.default_rng(0)
    dim, n = 8, 200_000
    mu1, s1 = random_gaussian(rng, dim)
    mu2, s2 = random_gaussian(rng, dim)
    expected = closed_form(mu1, s1, mu2, s2)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    got = frechet_distance_from_features(x, y)
    # Spread of the estimator over repetitions at this n is ~1% of the value; allow 5%.
    assert got == pytest.approx(expected, rel=0.05)


def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 16))
    assert frechet_distance_from_features(x, x) == pytest.approx(0.0, abs=1e-6)


def test_keras_metric_streams_and_matches_the_function():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 6))
    fake = rng.normal(0.3, 1.5, size=(300, 6))
    ref = FeatureStatistics.from_features(real)
    metric = FrechetDistance(ref.mean, ref.covariance)
    for i in range(0, 300, 64):
        metric.update_state(fake[i:i + 64].astype(np.float32))
    expected = frechet_distance_from_features(real, fake.astype(np.float32))
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)
    metric.reset_state()
    metric.update_state(real)
    assert float(metric.result()) == pytest.approx(0.0, abs=1e-6)
    clone = FrechetDistance.from_config(metric.get_config())
    np.testing.assert_allclose(clone.reference_covariance, ref.covariance)


def test_mismatched_feature_dims():
    with pytest.raises(ValueError, match="same feature dimension.*D=4.*D=5"):
        frechet_distance_from_features(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match="same dimension"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    metric = FrechetDistance(np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        metric.update_state(np.zeros((2, 4)))


def test_fewer_samples_than_dimensions_warns_about_bias():
    rng = np.random.default_rng(3)
    with pytest.warns(UserWarning, match="20 samples for 32-dimensional.*biased"):
        frechet_distance_from_features(rng.normal(size=(20, 32)), rng.normal(size=(100, 32)))


def test_invalid_covariance_is_reported_not_dropped():
    bad = np.array([[1.0, 0.0], [0.0, -4.0]])  # not PSD: sqrtm is imaginary
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), bad)


def test_keras_metric_runs_in_graph_mode():
    import tensorflow as tf

    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(200, 4)), rng.normal(1.0, 2.0, size=(200, 4))
    ref = FeatureStatistics.from_features(real)
    metric = FrechetDistance(ref.mean, ref.covariance)

    @tf.function
    def step(batch):
        metric.update_state(batch)
        return metric.result()

    for i in range(0, 200, 50):
        value = step(tf.constant(fake[i:i + 50], tf.float32))
    expected = frechet_distance_from_features(real, fake.astype(np.float32))
    assert float(value) == pytest.approx(expected, rel=1e-6)

"""Frechet distance between Gaussians fitted to two feature sets (FID on Inception features)."""

import warnings

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from keras_aigc.metrics import _checks
from keras_aigc.metrics.feature_statistics import FeatureStatistics


def _check_stats(mu, sigma, name):
    mu = np.atleast_1d(np.asarray(mu, np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, np.float64))
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: mean must be (D,) and covariance (D, D), got mean shape "
                         f"{mu.shape} and covariance shape {sigma.shape}.")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, imag_tol=1e-3):
    """Frechet (2-Wasserstein) distance between `N(mu1, sigma1)` and `N(mu2, sigma2)`.

    `d² = ||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)`, with the matrix square
    root from `scipy.linalg.sqrtm`. Rounding can give `sqrtm` a small imaginary part; one
    larger than `imag_tol` (relative to the largest real entry) means the covariances are
    broken and raises instead of being silently dropped.

    Args:
        mu1, mu2: array `(D,)`. Means.
        sigma1, sigma2: array `(D, D)`. Covariances.
        eps: float. Diagonal offset added when the product is too singular for `sqrtm`.
        imag_tol: float. Largest tolerated relative imaginary component.

    Returns:
        float. The squared Frechet distance (what papers call FID).

    Example:

    ```python
    s1 = keras_aigc.metrics.FeatureStatistics.from_features(real_features)
    s2 = keras_aigc.metrics.FeatureStatistics.from_features(fake_features)
    fid = keras_aigc.metrics.frechet_distance(s1.mean, s1.covariance, s2.mean, s2.covariance)
    ```

    Reference:
        Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium, 2017. Dowson & Landau, The Frechet distance between multivariate normal
        distributions, 1982.
    """
    mu1, sigma1 = _check_stats(mu1, sigma1, "mu1/sigma1")
    mu2, sigma2 = _check_stats(mu2, sigma2, "mu2/sigma2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"The two feature distributions must have the same dimension, got "
                         f"D={mu1.shape[0]} and D={mu2.shape[0]}.")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Singular covariances (e.g. dead ReLU features) are common and harmless here:
        # the result is checked below for non-finite values and imaginary parts instead.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            offset = np.eye(len(mu1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        scale = max(np.max(np.abs(covmean.real)), 1e-12)
        worst = np.max(np.abs(covmean.imag))
        if worst / scale > imag_tol:
            raise ValueError(
                f"The matrix square root has an imaginary component {worst:.3g} "
                f"({worst / scale:.3g} of its largest real entry, tolerance {imag_tol}): the "
                "covariances are not valid (too few samples, or NaN/constant features)."
            )
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def frechet_distance_from_features(features1, features2):
    """Frechet distance between Gaussians fitted to two `(N, D)` feature arrays.

    Warns when a set has fewer samples than dimensions: its covariance is then singular
    and the estimate is strongly biased upwards.
    """
    x = _checks.as_features(features1, "features1", min_rows=2)
    y = _checks.as_features(features2, "features2", min_rows=2)
    _checks.same_dim(x, y, "features1", "features2")
    _checks.warn_few_samples(len(x), x.shape[1], "features1")
    _checks.warn_few_samples(len(y), y.shape[1], "features2")
    s1 = FeatureStatistics.from_features(x)
    s2 = FeatureStatistics.from_features(y)
    return frechet_distance(s1.mean, s1.covariance, s2.mean, s2.covariance)


def _sqrt_psd(matrix):
    w, v = tf.linalg.eigh(matrix)
    return (v * tf.sqrt(tf.maximum(w, 0.0))[None, :]) @ tf.transpose(v)


def frechet_distance_tf(mu1, sigma1, mu2, sigma2):
    """Graph-mode Frechet distance via eigendecompositions (float64 in, float64 out).

    `Tr((Σ1 Σ2)^½) = Σ sqrt(eig(Σ1^½ Σ2 Σ1^½))`: the inner matrix is symmetric PSD, so
    `eigh` applies and the eigenvalues are real (negative round-off is clipped to 0).
    """
    s1_half = _sqrt_psd(sigma1)
    inner = s1_half @ sigma2 @ s1_half
    inner = 0.5 * (inner + tf.transpose(inner))
    tr_covmean = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(inner), 0.0)))
    diff = mu1 - mu2
    value = (tf.reduce_sum(diff * diff) + tf.linalg.trace(sigma1) + tf.linalg.trace(sigma2)
             - 2.0 * tr_covmean)
    return tf.maximum(value, 0.0)


@keras.saving.register_keras_serializable(package="keras_aigc")
class FrechetDistance(keras.metrics.Metric):
    """Streaming Frechet distance of features fed batch by batch, against fixed real stats.

    The state is `count`, `Σx` and `Σxxᵀ` in float64: additive, so replicas' states sum
    correctly under `tf.distribute`, and nothing but `D² + D + 1` numbers is kept however
    many samples go through. `result()` works in graph mode (eigendecompositions).

    Args:
        reference_mean: array `(D,)`. Mean of the real features.
        reference_covariance: array `(D, D)`. Covariance of the real features.
        name: str. Defaults to `"frechet_distance"`.

    Example:

    ```python
    ref = keras_aigc.metrics.FeatureStatistics.from_features(real_features)
    fd = keras_aigc.metrics.FrechetDistance(ref.mean, ref.covariance)
    for batch in fake_feature_batches:
        fd.update_state(batch)
    print(float(fd.result()))
    ```

    Reference:
        Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium, 2017.
    """

    def __init__(self, reference_mean, reference_covariance, name="frechet_distance",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        mu, sigma = _check_stats(reference_mean, reference_covariance,
                                 "reference_mean/reference_covariance")
        self.reference_mean = mu
        self.reference_covariance = sigma
        self.dim = int(mu.shape[0])
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64",
                                       name="count")
        self.total = self.add_variable(shape=(self.dim,), initializer="zeros",
                                       dtype="float64", name="total")
        self.total_outer = self.add_variable(shape=(self.dim, self.dim), initializer="zeros",
                                             dtype="float64", name="total_outer")

    def update_state(self, features, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("FrechetDistance does not support sample_weight.")
        x = tf.cast(features, tf.float64)
        if x.shape.rank != 2 or (x.shape[-1] is not None and x.shape[-1] != self.dim):
            raise ValueError(f"features must be (N, {self.dim}) like the reference "
                             f"statistics, got shape {tuple(x.shape)}.")
        self.count.assign_add(tf.cast(tf.shape(x)[0], tf.float64))
        self.total.assign_add(tf.reduce_sum(x, axis=0))
        self.total_outer.assign_add(tf.matmul(x, x, transpose_a=True))

    def result(self):
        n = self.count
        mean = self.total / tf.maximum(n, 1.0)
        cov = (self.total_outer - n * mean[:, None] * mean[None, :]) / tf.maximum(n - 1.0, 1.0)
        return frechet_distance_tf(tf.constant(self.reference_mean), tf.constant(
            self.reference_covariance), mean, cov)

    def get_config(self):
        config = super().get_config()
        config.update({
            "reference_mean": self.reference_mean.tolist(),
            "reference_covariance": self.reference_covariance.tolist(),
        })
        return config


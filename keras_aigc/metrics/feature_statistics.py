"""Streaming mean and covariance of feature vectors, accumulated in float64."""

import os

import numpy as np

from keras_aigc.metrics import _checks


class FeatureStatistics:
    """Running mean and covariance of `(N, D)` feature batches.

    Batches are merged with Chan et al.'s pairwise update of `(count, mean, M2)` in float64,
    so 50,000 samples never sit in memory and the result equals the statistics of the
    concatenated batches up to float64 rounding.

    Args:
        dim: int or None. Feature dimension; taken from the first batch when `None`.

    Example:

    ```python
    stats = keras_aigc.metrics.FeatureStatistics()
    for batch in feature_batches:
        stats.update(batch)
    mu, sigma = stats.mean, stats.covariance
    ```

    Reference:
        Chan, Golub, LeVeque. Updating Formulae and a Pairwise Algorithm for Computing
        Sample Variances, 1979.
    """

    def __init__(self, dim=None):
        if dim is not None:
            dim = _checks.positive_int(dim, "dim")
        self.dim = dim
        self.count = 0
        self._mean = None if dim is None else np.zeros(dim)
        self._m2 = None if dim is None else np.zeros((dim, dim))

    @classmethod
    def from_features(cls, features, batch_size=None):
        """Statistics of a whole `(N, D)` array (optionally fed in batches)."""
        x = _checks.as_features(features, "features")
        stats = cls(x.shape[1])
        step = batch_size or len(x)
        for i in range(0, len(x), step):
            stats.update(x[i:i + step])
        return stats

    def update(self, features):
        """Adds a `(n, D)` batch of features."""
        x = _checks.as_features(features, "features")
        if self.dim is None:
            self.dim = x.shape[1]
            self._mean = np.zeros(self.dim)
            self._m2 = np.zeros((self.dim, self.dim))
        if x.shape[1] != self.dim:
            raise ValueError(f"features must have dimension D={self.dim} like the earlier "
                             f"batches, got a batch of shape {x.shape}.")
        n_b = len(x)
        mean_b = x.mean(axis=0)
        centered = x - mean_b
        m2_b = centered.T @ centered
        self._merge(n_b, mean_b, m2_b)
        return self

    def merge(self, other):
        """Adds the samples summarised by another `FeatureStatistics` (e.g. another worker)."""
        if not isinstance(other, FeatureStatistics):
            raise ValueError(f"other must be a FeatureStatistics, got {type(other).__name__}.")
        if other.count == 0:
            return self
        if self.dim is None:
            self.dim = other.dim
            self._mean = np.zeros(self.dim)
            self._m2 = np.zeros((self.dim, self.dim))
        if other.dim != self.dim:
            raise ValueError(f"Cannot merge statistics of dimension {other.dim} into "
                             f"dimension {self.dim}.")
        self._merge(other.count, other._mean, other._m2)
        return self

    def _merge(self, n_b, mean_b, m2_b):
        n_a = self.count
        n = n_a + n_b
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (n_b / n)
        self._m2 = self._m2 + m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.count = n

    @property
    def mean(self):
        """float64 `(D,)` mean."""
        self._require(1)
        return self._mean.copy()

    @property
    def covariance(self):
        """float64 `(D, D)` unbiased (ddof=1) covariance."""
        self._require(2)
        return self._m2 / (self.count - 1)

    def _require(self, n):
        if self.count < n:
            raise ValueError(f"FeatureStatistics needs at least {n} samples, has {self.count}.")

    def save(self, path):
        """Writes `count`, `mean` and `covariance` to an `.npz` file."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.savez(path, count=self.count, mean=self.mean, covariance=self.covariance)

    @classmethod
    def load(cls, path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No feature statistics at path={path!r}.")
        with np.load(path) as f:
            stats = cls(int(f["mean"].shape[0]))
            stats.count = int(f["count"])
            stats._mean = np.asarray(f["mean"], np.float64)
            stats._m2 = np.asarray(f["covariance"], np.float64) * (stats.count - 1)
        return stats

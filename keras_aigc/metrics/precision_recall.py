"""Improved precision and recall: k-NN manifolds of real and generated features."""

import numpy as np

from keras_aigc.metrics import _checks


def _pairwise_sq_dist(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _knn_radii(x, k, batch_size):
    """Squared distance from each row of `x` to its k-th nearest other row."""
    radii = np.empty(len(x))
    for i in range(0, len(x), batch_size):
        d = _pairwise_sq_dist(x[i:i + batch_size], x)
        # Column 0 of the partition is the point itself (distance 0).
        radii[i:i + batch_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def _coverage(manifold, radii, queries, batch_size):
    """Share of `queries` inside at least one ball (center in `manifold`, radius^2 `radii`)."""
    inside = 0
    for i in range(0, len(queries), batch_size):
        d = _pairwise_sq_dist(queries[i:i + batch_size], manifold)
        inside += int(np.any(d <= radii[None, :], axis=1).sum())
    return inside / len(queries)


def precision_recall(real_features, fake_features, k=3, batch_size=1024):
    """Improved precision and recall of generated features against real ones.

    Each set's manifold is the union of balls around its points, with radius the distance
    to the point's k-th nearest neighbour in the same set. Precision is the share of fake
    points inside the real manifold (fidelity); recall is the share of real points inside
    the fake manifold (coverage).

    Args:
        real_features: array `(N, D)`.
        fake_features: array `(M, D)`.
        k: int. Neighbourhood size; needs `k < min(N, M)`. Defaults to `3` (the paper's).
        batch_size: int. Rows per distance block (memory is `batch_size * max(N, M)`).

    Returns:
        dict with float `"precision"` and `"recall"` in [0, 1].

    Example:

    ```python
    pr = keras_aigc.metrics.precision_recall(real_feats, fake_feats, k=3)
    ```

    Reference:
        Kynkäänniemi, Karras, Laine, Lehtinen, Aila. Improved Precision and Recall Metric
        for Assessing Generative Models, 2019.
    """
    x = _checks.as_features(real_features, "real_features")
    y = _checks.as_features(fake_features, "fake_features")
    _checks.same_dim(x, y, "real_features", "fake_features")
    k = _checks.positive_int(k, "k")
    batch_size = _checks.positive_int(batch_size, "batch_size")
    if k >= min(len(x), len(y)):
        raise ValueError(f"k={k} needs more samples: both sets must have more than k rows, got "
                         f"{len(x)} real and {len(y)} fake.")
    real_radii = _knn_radii(x, k, batch_size)
    fake_radii = _knn_radii(y, k, batch_size)
    return {
        "precision": _coverage(x, real_radii, y, batch_size),
        "recall": _coverage(y, fake_radii, x, batch_size),
    }

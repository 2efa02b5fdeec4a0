"""Kernel Inception Distance: unbiased MMD² with a cubic polynomial kernel, over subsets."""

import numpy as np

from keras_aigc.metrics import _checks


def _polynomial_kernel(a, b, degree, coef0):
    return (a @ b.T / a.shape[1] + coef0) ** degree


def _mmd2_unbiased(x, y, degree, coef0):
    m = len(x)
    k_xx = _polynomial_kernel(x, x, degree, coef0)
    k_yy = _polynomial_kernel(y, y, degree, coef0)
    k_xy = _polynomial_kernel(x, y, degree, coef0)
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return sum_xx + sum_yy - 2.0 * k_xy.mean()


def kernel_inception_distance(real_features, fake_features, num_subsets=100, subset_size=1000,
                              degree=3, coef0=1.0, seed=0):
    """KID: the unbiased MMD² between two feature sets, averaged over random subsets.

    Kernel `k(x, y) = (xᵀy / D + coef0) ** degree` (cubic by default, as in the paper). Each
    subset draws `subset_size` rows from each set without replacement; the estimate of one
    subset is unbiased, so KID of two samples from one distribution is 0 on average and
    may be slightly negative.

    Args:
        real_features: array `(N, D)`.
        fake_features: array `(M, D)`.
        num_subsets: int. Number of subsets. Defaults to `100`.
        subset_size: int. Rows per subset, capped at `min(N, M)`. Defaults to `1000`.
        degree: int. Polynomial degree. Defaults to `3`.
        coef0: float. Kernel offset. Defaults to `1`.
        seed: int. Seed of the subset draws. Defaults to `0`.

    Returns:
        `(mean, std)` over subsets, as floats.

    Example:

    ```python
    kid, kid_std = keras_aigc.metrics.kernel_inception_distance(real_feats, fake_feats)
    ```

    Reference:
        Binkowski, Sutherland, Arbel, Gretton. Demystifying MMD GANs, 2018.
    """
    x = _checks.as_features(real_features, "real_features", min_rows=2)
    y = _checks.as_features(fake_features, "fake_features", min_rows=2)
    _checks.same_dim(x, y, "real_features", "fake_features")
    num_subsets = _checks.positive_int(num_subsets, "num_subsets")
    subset_size = _checks.positive_int(subset_size, "subset_size")
    degree = _checks.positive_int(degree, "degree")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}.")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        xs = x[rng.choice(len(x), m, replace=False)]
        ys = y[rng.choice(len(y), m, replace=False)]
        values[i] = _mmd2_unbiased(xs, ys, degree, coef0)
    return float(values.mean()), float(values.std())

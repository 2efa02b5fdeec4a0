"""Input checks shared by the metric functions (private)."""

import warnings

import numpy as np


def as_features(x, name, min_rows=1):
    """`x` as a float64 `(N, D)` array; raises a ValueError naming `name` otherwise."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric (N, D) array of features; could not "
                         f"convert {type(x).__name__}: {e}") from e
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array of features, got shape "
                         f"{arr.shape}. Flatten or pool images into feature vectors first.")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {arr.shape[0]}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def same_dim(a, b, name_a, name_b):
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same feature dimension, got "
            f"{name_a} with D={a.shape[-1]} and {name_b} with D={b.shape[-1]}. Extract both "
            "with the same feature extractor."
        )


def positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}.")
    return int(value)


def warn_few_samples(n, dim, name):
    """Frechet statistics from fewer samples than dimensions are singular and biased."""
    if n < dim:
        warnings.warn(
            f"{name} has {n} samples for {dim}-dimensional features: the covariance is "
            "singular and the Frechet distance is strongly biased upwards. Use at least "
            f"{dim} samples (10,000+ is customary for FID).",
            UserWarning, stacklevel=3,
        )

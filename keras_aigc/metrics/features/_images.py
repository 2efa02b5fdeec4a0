"""Image checks and batching shared by the feature extractors (private)."""

import numpy as np


def check_images(images, name="images"):
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"{name} must be a 4-D (N, H, W, C) batch, got shape {x.shape}.")
    if len(x) == 0:
        raise ValueError(f"{name} is empty.")
    return x


def check_value_range(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError) as e:
        raise ValueError(f"value_range must be (low, high), got {value_range!r}.") from e
    if not high > low:
        raise ValueError(f"value_range must have high > low, got {value_range!r}.")
    return low, high


def rescale(x, from_range, to_range):
    """Maps pixel values linearly from one range to another (float32)."""
    (a, b), (c, d) = from_range, to_range
    return ((np.asarray(x, np.float32) - a) * ((d - c) / (b - a)) + c).astype(np.float32)


def batched(fn, x, batch_size):
    outs = [np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    return np.concatenate(outs)

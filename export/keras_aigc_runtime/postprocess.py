"""Latent sampling and pixel post-processing exactly as the manifest specifies them."""

import numpy as np


def sample_latents(latent, n, rng):
    """`z = loc + scale * N(0, 1)` of shape `(n, dim)`, float32 (the manifest's `latent`)."""
    if latent is None:
        raise ValueError("This bundle's model has no latent prior (manifest latent: null); "
                         "its generate signature takes 'noise' (see the manifest's noise).")
    if latent["distribution"] != "normal":
        raise ValueError(f"latent distribution={latent['distribution']!r} is not supported; "
                         f"this runtime samples 'normal'.")
    eps = rng.standard_normal((n, int(latent["dim"])))
    z = float(latent.get("loc", 0.0)) + float(latent.get("scale", 1.0)) * eps
    return z.astype(latent.get("dtype", "float32"))


def sample_noise(noise, n, rng):
    """Uniform noise on `[low, high)` of shape `(n, *shape)` (the manifest's `noise`), the
    randomness an autoregressive sampler consumes: one draw per pixel and channel."""
    if noise is None:
        raise ValueError("This bundle has no noise entry in its manifest, so no signature "
                         "takes noise.")
    if noise["distribution"] != "uniform":
        raise ValueError(f"noise distribution={noise['distribution']!r} is not supported; "
                         f"this runtime samples 'uniform'.")
    low, high = float(noise["low"]), float(noise["high"])
    # A float32 draw, as `PixelCNN.noise(n, seed)` makes it: the same seed gives the
    # same noise (hence the same images) here and in Keras, and no value rounds up to 1.
    u = rng.random((n,) + tuple(int(d) for d in noise["shape"]), dtype=np.float32)
    if (low, high) != (0.0, 1.0):
        u = low + (high - low) * u
    return u.astype(noise.get("dtype", "float32"))


def random_inputs(manifest, spec, n, rng):
    """`{name: array}` for every random input of a signature spec, by role: `latent`
    from the manifest's prior, `noise` from its noise entry. Labels are not random."""
    out = {}
    for t in spec["inputs"]:
        if t.get("role") == "latent":
            out[t["name"]] = sample_latents(manifest["latent"], n, rng)
        elif t.get("role") == "noise":
            out[t["name"]] = sample_noise(manifest.get("noise"), n, rng)
    return out


def to_uint8_spec(low, high):
    """The manifest's `output.to_uint8` entry for images in `[low, high]`."""
    low, high = float(low), float(high)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got "
                         f"{(low, high)}.")
    return {"formula": "clip(round((x - low) * (255 / (high - low))), 0, 255)",
            "low": low, "high": high, "rounding": "half_to_even"}


def to_uint8(x, to_uint8_spec):
    """`clip(round((x - low) * (255 / (high - low))), 0, 255)` with round-half-to-even."""
    if to_uint8_spec.get("rounding", "half_to_even") != "half_to_even":
        raise ValueError(f"to_uint8 rounding={to_uint8_spec['rounding']!r} is not supported.")
    low, high = float(to_uint8_spec["low"]), float(to_uint8_spec["high"])
    x = np.asarray(x, np.float32)
    return np.clip(np.round((x - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)


def normalize_labels(labels, n, num_classes, error=ValueError):
    """Labels for `n` images as int32 `(n,)`, the rule keras_aigc models follow.

    `None` cycles the classes, `np.arange(n) % num_classes`; one int is repeated `n`
    times; otherwise `n` integers in `[0, num_classes)`. Raises `error` naming the problem.
    """
    if not num_classes:
        raise error("This bundle has no num_classes, so it takes no labels.")
    if labels is None:
        return (np.arange(n) % num_classes).astype(np.int32)
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.dtype.kind not in "iu":
        raise error(f"labels must be integers, got labels of dtype {arr.dtype}.")
    if arr.shape != (n,):
        raise error(f"labels must hold one label per image: expected shape ({n},), got "
                    f"labels of shape {arr.shape}.")
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        raise error(f"labels must be in [0, {num_classes}) (num_classes={num_classes}), got "
                    f"labels={bad[:5].tolist()}.")
    return arr.astype(np.int32)

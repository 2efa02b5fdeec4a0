"""Features of a real data split, computed once per (data, network, preprocessing) and cached."""

import hashlib
import json
import os

import numpy as np

CACHE_ENV = "KERAS_AIGC_CACHE"


def default_cache_dir():
    """`$KERAS_AIGC_CACHE/reference_features`, else `$KERAS_HOME/keras_aigc/...`."""
    root = os.environ.get(CACHE_ENV)
    if not root:
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        root = os.path.join(home, "keras_aigc")
    return os.path.join(root, "reference_features")


def data_sha256(images):
    """sha256 of an image array's shape, dtype and bytes (the data part of the cache key)."""
    x = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{x.shape}|{x.dtype}|".encode())
    h.update(x.tobytes())
    return h.hexdigest()


def extractor_key(extractor):
    """What identifies the network and its preprocessing (name, weights hash, resize)."""
    key = {"network": extractor.name,
           "preprocessing": getattr(extractor, "preprocessing", "default")}
    if hasattr(extractor, "weights_sha256"):
        key["weights_sha256"] = extractor.weights_sha256()
    return key


def reference_features(extractor, images, value_range=(0.0, 255.0), cache_dir=None,
                       stream=None):
    """`(N, D)` features of real `images`, read from the cache when computed before.

    The cache entry is keyed by the sha256 of the images, the network (name and weights
    sha256) and its preprocessing, so an evaluation computes only the generated side.
    Entries are written atomically (a temporary file renamed into place).

    Args:
        extractor: a feature extractor (`FIDInception`, `DomainFeatures`, ...).
        images: `(N, H, W, C)` array of real images in `value_range`.
        value_range: tuple. Pixel range of `images`. Defaults to `(0, 255)`.
        cache_dir: str or None. Defaults to `default_cache_dir()`.
        stream: file or None. Where to say whether the cache was hit.

    Returns:
        `(features, info)`: float32 features and a dict with the cache path and key.

    Example:

    ```python
    feats, info = reference_features(FIDInception(weights=w), test_images)
    ```
    """
    cache_dir = cache_dir or default_cache_dir()
    key = {**extractor_key(extractor), "data_sha256": data_sha256(images),
           "value_range": [float(v) for v in value_range], "num_images": int(len(images))}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    path = os.path.join(cache_dir, f"{key['network']}-{digest}.npz")
    if os.path.isfile(path):
        try:
            with np.load(path) as cached:
                feats = cached["features"]
            if feats.shape == (len(images), extractor.dim):
                if stream is not None:
                    print(f"Reference features from cache: {path}", file=stream)
                return feats, {"cache": path, "cache_hit": True, **key}
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is recomputed and replaced below
    feats = np.asarray(extractor(images, value_range=value_range), np.float32)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, features=feats, key=json.dumps(key, sort_keys=True))
    os.replace(tmp, path)
    if stream is not None:
        print(f"Reference features cached: {path}", file=stream)
    return feats, {"cache": path, "cache_hit": False, **key}

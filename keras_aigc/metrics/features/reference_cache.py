"""Features of a real data split, computed once per (data, network, preprocessing) and cached."""

import hashlib
import json
import os
import time

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


def _acquire(lock):
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        if _holder_alive(lock):
            return False
        os.remove(lock)  # left by a process that died
        return _acquire(lock)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def _holder_alive(lock):
    try:
        with open(lock) as f:
            pid = int(f.read().strip() or 0)
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def reference_features(extractor, images, value_range=(0.0, 255.0), cache_dir=None,
                       stream=None, poll_seconds=5.0):
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
        poll_seconds: float. While another process computes the same entry (it holds
            `<entry>.lock`), wait this long between checks instead of computing it again.

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
    os.makedirs(cache_dir, exist_ok=True)
    lock = path + ".lock"
    if not _acquire(lock):
        # Another process computes the same entry: wait for it rather than duplicate it.
        if stream is not None:
            print(f"Waiting for another process to write {path}", file=stream)
        while os.path.exists(lock) and _holder_alive(lock):
            time.sleep(poll_seconds)
        return reference_features(extractor, images, value_range, cache_dir, stream)
    try:
        feats = np.asarray(extractor(images, value_range=value_range), np.float32)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(tmp, features=feats, key=json.dumps(key, sort_keys=True))
        os.replace(tmp, path)
    finally:
        os.remove(lock)
    if stream is not None:
        print(f"Reference features cached: {path}", file=stream)
    return feats, {"cache": path, "cache_hit": False, **key}

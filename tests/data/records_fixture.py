"""Writes small `records:` datasets for tests with the real shard writer (no Spark)."""

import json
import os

import numpy as np

from keras_aigc.data.prepare import images, job, writer


def write_records(out, x, y, *, shards=(3, 1, 1), image_format="png", class_names=None):
    """Writes uint8 images `x` (N, H, W, C) and labels `y` as prepare would.

    The first 60% go to train, then 20% validation, 20% test, each split in `shards`
    shards, records sorted by content hash within a shard (prepare's order).
    Returns the dataset.json dict.
    """
    os.makedirs(out, exist_ok=True)
    n = len(x)
    bounds = [0, int(n * 0.6), int(n * 0.8), n]
    params = job.make_params(image_size=None, image_format=image_format)
    infos = []
    for s, split in enumerate(job.SPLIT_ORDER):
        idx = np.arange(bounds[s], bounds[s + 1])
        count = shards[s]
        recs = [{"id": str(i), "label": int(y[i]), "sha": images.pixel_hash(x[i]),
                 "image": images.encode(x[i], image_format), "shape": x[i].shape} for i in idx]
        for k in range(count):
            mine = sorted((r for r in recs if images.shard_of(r["sha"], count) == k),
                          key=lambda r: (r["sha"], r["id"]))
            infos.append(writer.write_shard(out, split, k, count, mine))
    names = class_names or [str(i) for i in range(int(np.max(y)) + 1)]
    dropped = {r: 0 for r in images.REASONS}
    meta = job._metadata("test", params, names, x.shape[1:], infos, dropped, {},
                         {"clusters": 0}, n)
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(meta, f)
    return meta


def random_images(n, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)

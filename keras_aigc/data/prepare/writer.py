"""Writes one TFRecord shard atomically (runs on a Spark executor, one shard per task)."""

import hashlib
import os
import uuid

SHARD_PATTERN = "{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_name(split, index, count):
    return SHARD_PATTERN.format(split=split, index=index, count=count)


def example_bytes(rec):
    """A `tf.train.Example` with `image` (encoded bytes), `label` and `hash` (sha256 hex)."""
    import tensorflow as tf

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rec["image"]])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[rec["label"]])),
        "hash": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rec["sha"].encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shard(output, split, index, count, records):
    """Writes `records` (already sorted) to `output/<split>-<index>-of-<count>.tfrecord`.

    The file is written under a temporary name in the same folder and renamed into place,
    so a reader never sees a half-written shard and a killed job leaves no partial shard.

    Returns:
        dict with `file`, `split`, `index`, `records`, `sha256`, `per_class` and `shapes`.
    """
    import tensorflow as tf

    name = shard_name(split, index, count)
    final = os.path.join(output, name)
    tmp = os.path.join(output, f".{name}.{uuid.uuid4().hex}.tmp")
    per_class = {}
    shapes = set()
    try:
        with tf.io.TFRecordWriter(tmp) as writer:
            for rec in records:
                writer.write(example_bytes(rec))
                per_class[rec["label"]] = per_class.get(rec["label"], 0) + 1
                shapes.add(tuple(rec["shape"]))
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {"file": name, "split": split, "index": index, "records": sum(per_class.values()),
            "sha256": digest.hexdigest(), "per_class": per_class, "shapes": sorted(shapes)}

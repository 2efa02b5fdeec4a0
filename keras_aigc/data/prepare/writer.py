"""Writes one TFRecord shard atomically (runs on a Spark executor, one shard per task).

No TensorFlow here: a Spark Python worker that imports TensorFlow grows past
`spark.python.worker.memory` (512 MB), so every shuffle spills to disk, and each of its
`gc.collect()` calls walks TensorFlow's object graph (seconds per task). The records are
`tf.train.Example` protos encoded by hand (three fields, deterministic field order) in the
TFRecord framing (length, masked CRC-32C, data, masked CRC-32C); tests check both against
TensorFlow's own encoder and reader.
"""

import hashlib
import os
import struct
import uuid

SHARD_PATTERN = "{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_name(split, index, count):
    return SHARD_PATTERN.format(split=split, index=index, count=count)


def _crc32c(data):
    try:
        import google_crc32c
    except ImportError as e:
        raise ImportError("keras-aigc prepare writes TFRecords with google-crc32c: "
                          "pip install 'keras-aigc[spark]' (or pip install google-crc32c).") from e
    return google_crc32c.value(data)


def _masked_crc(data):
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n):
    out = bytearray()
    while True:
        bits = n & 0x7F
        n >>= 7
        if n:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _bytes_feature(value):
    return _field(1, _field(1, value))  # Feature.bytes_list = BytesList{value: [value]}


def _int64_feature(value):
    packed = _varint(int(value) & 0xFFFFFFFFFFFFFFFF)
    return _field(3, _field(1, packed))  # Feature.int64_list = Int64List{value: [value]}


def example_bytes(rec):
    """A serialized `tf.train.Example` with `image` (encoded bytes), `label` and `hash`.

    Byte-identical to `tf.train.Example(...).SerializeToString(deterministic=True)`
    (map entries in key order).
    """
    features = {"hash": _bytes_feature(rec["sha"].encode()), "image": _bytes_feature(rec["image"]),
                "label": _int64_feature(rec["label"])}
    entries = b"".join(_field(1, _field(1, key.encode()) + _field(2, value))
                       for key, value in sorted(features.items()))
    return _field(1, entries)  # Example.features = Features{feature: map entries}


def tfrecord_frame(data):
    """One TFRecord: little-endian uint64 length, masked CRC-32C of it, data, its masked CRC."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked_crc(length)) + data
            + struct.pack("<I", _masked_crc(data)))


def write_shard(output, split, index, count, records):
    """Writes `records` (already sorted) to `output/<split>-<index>-of-<count>.tfrecord`.

    The file is written under a temporary name in the same folder and renamed into place,
    so a reader never sees a half-written shard and a killed job leaves no partial shard.

    Returns:
        dict with `file`, `split`, `index`, `records`, `sha256`, `per_class` and `shapes`.
    """
    name = shard_name(split, index, count)
    final = os.path.join(output, name)
    tmp = os.path.join(output, f".{name}.{uuid.uuid4().hex}.tmp")
    per_class = {}
    shapes = set()
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as f:
            for rec in records:
                frame = tfrecord_frame(example_bytes(rec))
                f.write(frame)
                digest.update(frame)
                per_class[rec["label"]] = per_class.get(rec["label"], 0) + 1
                shapes.add(tuple(rec["shape"]))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {"file": name, "split": split, "index": index, "records": sum(per_class.values()),
            "sha256": digest.hexdigest(), "per_class": per_class, "shapes": sorted(shapes)}

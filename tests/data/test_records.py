"""The `records:DIR` streaming source against the in-memory pipeline."""

import collections
import json
import os
import warnings

import numpy as np
import pytest

from keras_aigc import data
from keras_aigc.data import records
from tests.data.records_fixture import random_images, write_records


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("records"))
    x = random_images(100)
    y = np.arange(100) % 5
    write_records(out, x, y, shards=(3, 1, 1))
    return out, x, y


def _batches(ds):
    return [tuple(t.numpy() for t in b) if isinstance(b, tuple) else b.numpy() for b in ds]


@pytest.mark.parametrize("split", ["train", "validation", "all"])
def test_streaming_equals_in_memory_without_shuffle(rec_dir, split):
    out, _, _ = rec_dir
    kw = dict(split=split, batch_size=16, labels=True, shuffle=False, scaling="tanh")
    stream = _batches(data.load(f"records:{out}", **kw))
    memory = _batches(data.load(f"records:{out}", streaming=False, **kw))
    assert len(stream) == len(memory) > 1
    for (a, la), (b, lb) in zip(stream, memory):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert stream[0][0].dtype == np.float32 and stream[0][0].min() >= -1.0


def test_streaming_shuffle_same_multiset_over_an_epoch(rec_dir):
    out, x, _ = rec_dir
    kw = dict(split="train", batch_size=7, scaling="sigmoid", shuffle_buffer=13)
    shuffled = np.concatenate(_batches(data.load(f"records:{out}", shuffle=True, seed=1, **kw)))
    plain = np.concatenate(_batches(data.load(f"records:{out}", shuffle=False, **kw)))
    key = lambda a: collections.Counter(v.tobytes() for v in a)  # noqa: E731
    assert len(shuffled) == 60 and key(shuffled) == key(plain)
    assert not np.array_equal(shuffled, plain)
    # The train images are exactly the first 60 written, scaled to [0, 1].
    assert key(np.round(plain * 255).astype(np.uint8)) == key(x[:60])
    again = np.concatenate(_batches(data.load(f"records:{out}", shuffle=True, seed=1, **kw)))
    np.testing.assert_array_equal(again, shuffled)


def test_info_comes_from_dataset_json_without_reading_shards(tmp_path):
    out = str(tmp_path / "r")
    write_records(out, random_images(20, size=8, channels=1), np.arange(20) % 2,
                  shards=(2, 1, 1), class_names=["cat", "dog"])
    for name in os.listdir(out):
        if name.endswith(".tfrecord"):
            with open(os.path.join(out, name), "wb") as f:
                f.write(b"garbage")  # info must not open these
    info = data.info(f"records:{out}", "train")
    assert info.image_shape == (8, 8, 1) and info.class_names == ["cat", "dog"]
    assert info.num_examples == 12 and info.split_sizes["all"] == 20
    ds, info = data.load(f"records:{out}", batch_size=4, with_info=True)  # builds lazily
    assert info.num_examples == 12 and info.value_range == (-1.0, 1.0)


def test_static_binarization_fixed_per_image_dynamic_changes(rec_dir):
    out, _, _ = rec_dir
    kw = dict(split="validation", batch_size=20, scaling="sigmoid", shuffle=False)
    a = _batches(data.load(f"records:{out}", binarize="static", **kw))[0]
    b = _batches(data.load(f"records:{out}", binarize="static", **kw))[0]
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0}
    ds = data.load(f"records:{out}", binarize="dynamic", **kw)
    e1, e2 = _batches(ds)[0], _batches(ds)[0]
    assert set(np.unique(e1)) == {0.0, 1.0} and not np.array_equal(e1, e2)


def test_cache_and_drop_remainder(rec_dir):
    out, _, _ = rec_dir
    ds = data.load(f"records:{out}", batch_size=16, cache=True, drop_remainder=True,
                   shuffle=False)
    first, second = _batches(ds), _batches(ds)
    assert [len(b) for b in first] == [16, 16, 16]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_jpeg_and_raw_formats(tmp_path):
    x = random_images(10, size=8)
    for fmt in ("raw", "jpeg"):
        out = str(tmp_path / fmt)
        write_records(out, x, np.zeros(10, int), shards=(1, 1, 1), image_format=fmt)
        got = np.concatenate(_batches(data.load(f"records:{out}", split="all", batch_size=4,
                                                shuffle=False, scaling="sigmoid")))
        assert got.shape == (10, 8, 8, 3)
        if fmt == "raw":
            ref, _, _, _ = records.read_arrays(out, "all")
            np.testing.assert_array_equal(np.round(got * 255).astype(np.uint8), ref)


def test_shard_policy_file_or_data_with_warning():
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    assert records.shard_policy(4, 2, "records:x") == policy.FILE
    assert records.shard_policy(1, 1, "records:x") == policy.FILE
    with pytest.warns(UserWarning, match="1 shard.*2 workers.*DATA"):
        assert records.shard_policy(1, 2, "records:x") == policy.DATA
    env = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"], "chief": ["c:3"]},
                                    "task": {"type": "worker", "index": 0}})}
    assert records.num_workers(env) == 3 and records.num_workers({}) == 1


def test_bad_records_sources_name_the_problem(tmp_path, rec_dir):
    with pytest.raises(FileNotFoundError, match="no dataset.json.*keras-aigc prepare"):
        data.load(f"records:{tmp_path}")
    with pytest.raises(ValueError, match="names no folder"):
        data.load("records:")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dataset.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ValueError, match="format_version=99"):
        data.load(f"records:{bad}")
    out, _, _ = rec_dir
    with pytest.raises(ValueError, match="shuffle_buffer must be a positive integer"):
        data.load(f"records:{out}", shuffle_buffer=0)
    with pytest.raises(ValueError, match="Unrecognized split"):
        data.load(f"records:{out}", split="dev")
    gone = tmp_path / "gone"
    write_records(str(gone), random_images(10, size=8), np.zeros(10, int), shards=(2, 1, 1))
    os.remove(gone / "train-00001-of-00002.tfrecord")
    with pytest.raises(FileNotFoundError, match="1 shard.*missing.*train-00001-of-00002"):
        data.load(f"records:{gone}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.load(f"records:{out}", split="test")  # 1 shard, 1 worker: no warning

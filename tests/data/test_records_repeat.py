"""`records:` with `repeat=True`: an endless stream, one seeded permutation per pass."""

import json
import warnings

import numpy as np
import pytest

from keras_aigc import data
from keras_aigc.data import records
from tests.data.records_fixture import random_images, write_records


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("records"))
    write_records(out, random_images(100, size=4), np.arange(100), shards=(3, 1, 1))
    return out  # train: labels 0..59 in 3 shards


def _labels(ds, steps):
    it = iter(ds)
    return np.concatenate([next(it)[1].numpy() for _ in range(steps)])


def _load(out, **kw):
    kw = dict(dict(batch_size=6, labels=True, shuffle=True, seed=1, shuffle_buffer=16,
                   repeat=True, with_info=True), **kw)
    return data.load(f"records:{out}", **kw)


def test_each_pass_is_a_permutation_seeded_by_seed_and_pass(rec_dir):
    ds, info = _load(rec_dir)
    assert info.steps_per_epoch == 10 and int(ds.cardinality()) == -1  # infinite
    seen = _labels(ds, 3 * info.steps_per_epoch).reshape(3, 60)
    for p in seen:  # every train record exactly once per pass
        assert sorted(p) == list(range(60))
    assert len({tuple(p) for p in seen}) == 3  # a new order each pass
    again, _ = _load(rec_dir)
    np.testing.assert_array_equal(_labels(again, 30), seen.reshape(-1))  # same seed, same stream
    other, _ = _load(rec_dir, seed=2)
    assert not np.array_equal(_labels(other, 10), seen[0])
    plain, _ = _load(rec_dir, shuffle=False)
    np.testing.assert_array_equal(_labels(plain, 20).reshape(2, 60)[1],
                                  _labels(plain, 10))  # no shuffle: shard order every pass


def test_remainder_carries_into_the_next_epoch_with_full_batches(rec_dir):
    ds, info = _load(rec_dir, batch_size=7)
    assert info.steps_per_epoch == 8  # 60 // 7; the 4 records left start the next batch
    batches = [b[1].numpy() for _, b in zip(range(9), ds)]
    assert all(len(b) == 7 for b in batches)
    flat = np.concatenate(batches)
    assert sorted(flat[:60]) == list(range(60))
    assert ds.element_spec[0].shape[0] == 7  # static batch dimension


def test_restored_iterator_continues_the_stream(rec_dir, tmp_path):
    import tensorflow as tf

    ds, _ = _load(rec_dir, labels=False, binarize="dynamic", scaling="sigmoid")
    reference = [b.numpy() for _, b in zip(range(25), ds)]
    it = iter(ds)
    for _ in range(13):  # inside the second pass, buffer partly drained
        next(it)
    tf.train.Checkpoint(iterator=it).write(str(tmp_path / "it"))
    fresh, _ = _load(rec_dir, labels=False, binarize="dynamic", scaling="sigmoid")
    restored = iter(fresh)
    tf.train.Checkpoint(iterator=restored).read(str(tmp_path / "it")).assert_consumed()
    for want in reference[13:]:
        np.testing.assert_array_equal(next(restored).numpy(), want)


def _cluster(workers, index, chief=False):
    names = [f"localhost:{1000 + i}" for i in range(workers)]
    cluster = {"worker": names[1:], "chief": names[:1]} if chief else {"worker": names}
    task = ({"type": "chief", "index": 0} if chief and index == 0 else
            {"type": "worker", "index": index - 1 if chief else index})
    return json.dumps({"cluster": cluster, "task": task})


@pytest.mark.parametrize("chief", [False, True])
def test_workers_read_disjoint_files_each_record_once_per_pass(rec_dir, monkeypatch, chief):
    import tensorflow as tf

    meta = records.read_metadata(rec_dir)
    shards = meta["splits"]["train"]["shards"]
    seen = []
    for index in range(2):
        monkeypatch.setenv("TF_CONFIG", _cluster(2, index, chief))
        assert records.worker_index() == index
        ds, info = _load(rec_dir, batch_size=1)
        assert (ds.options().experimental_distribute.auto_shard_policy
                == tf.data.experimental.AutoShardPolicy.OFF)
        mine = shards[index::2]
        n = sum(s["records"] for s in mine)
        stream = _labels(ds, 2 * n).reshape(2, n)
        assert sorted(stream[0]) == sorted(stream[1])  # one pass = this worker's records
        seen.append(set(stream[0]))
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(60))


def test_fewer_shards_than_workers_falls_back_to_data_sharding(rec_dir, monkeypatch):
    seen = []
    for index in range(4):
        monkeypatch.setenv("TF_CONFIG", _cluster(4, index))
        with pytest.warns(UserWarning, match="3 shard.*4 workers.*DATA"):
            ds, _ = _load(rec_dir, batch_size=1)
        seen.append(set(_labels(ds, 15)))
    assert sum(len(s) for s in seen) == 60 and set().union(*seen) == set(range(60))


def test_worker_files():
    files = ["a", "b", "c", "d", "e"]
    assert records.worker_files(files, 1, 0, "s") == (files, False)
    assert records.worker_files(files, 2, 1, "s") == (["b", "d"], False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert records.worker_files(files[:1], 2, 1, "s") == (["a"], True)
    with pytest.raises(ValueError, match="worker index 2 is outside the cluster of 2"):
        records.worker_files(files, 2, 2, "s")


def test_bad_repeat_arguments_name_the_problem(rec_dir):
    with pytest.raises(ValueError, match="repeat must be True or False"):
        _load(rec_dir, repeat="yes")
    with pytest.raises(ValueError, match="repeat=True makes an endless stream.*'digits'"):
        data.load("digits", repeat=True)
    with pytest.raises(ValueError, match="repeat=True.*streaming=False"):
        data.load(f"records:{rec_dir}", streaming=False, repeat=True)
    with pytest.raises(ValueError, match="cache=True with repeat=True is not supported"):
        _load(rec_dir, cache=True)
    with pytest.raises(ValueError, match="20 record.*batch_size=32.*Lower batch_size"):
        _load(rec_dir, split="test", batch_size=32)


def test_stream_does_not_depend_on_the_global_seed(rec_dir):
    import tensorflow as tf

    try:
        tf.random.set_seed(0)  # keras.utils.set_random_seed(0), as the CLI's default
        a = _labels(_load(rec_dir)[0], 10)
        tf.random.set_seed(7)
        b = _labels(_load(rec_dir)[0], 10)
    finally:
        tf.random.set_seed(None)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, _labels(_load(rec_dir)[0], 10))

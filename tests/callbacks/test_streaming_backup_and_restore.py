"""StreamingBackupAndRestore in one process: resume of an endless stream, misuse errors.

The SIGKILL tests (real killed processes) are in tests/data/test_records_resume.py.
"""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import data
from keras_aigc.callbacks import BackupAndRestore, StreamingBackupAndRestore
from keras_aigc.models.base import GenerativeModel
from tests.data.records_fixture import random_images, write_records


class Probe(GenerativeModel):
    """Trains nothing real: its step counts and adds a fingerprint of the batch to `w`."""

    def __init__(self):
        super().__init__()
        # one replica's value under MirroredStrategy (the variables are not reduced)
        self.w = self.add_weight(shape=(), initializer="zeros", name="w",
                                 aggregation="only_first_replica")
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="count", aggregation="only_first_replica")

    def call(self, x):
        return x * self.w

    def train_step(self, batch):
        ramp = tf.reshape(tf.range(tf.size(batch[0]), dtype=tf.float32) + 1.0,
                          tf.shape(batch[0]))
        fp = tf.reduce_sum(batch * ramp[None])
        self.w.assign_add(1e-6 * fp)
        self.count.assign_add(1.0)
        return {"fp": fp, "count": self.count}


def _probe(strategy=None):
    with (strategy or tf.distribute.get_strategy()).scope():
        model = Probe()
        model(tf.zeros((1, 4, 4, 3)))
        model.compile(optimizer=None)
    return model


class Crash(Exception):
    pass


class Record(keras.callbacks.Callback):
    """Logs (step, epoch, batch, fp) of trained steps; raises Crash after step `crash_at`."""

    def __init__(self, crash_at=None):
        super().__init__()
        self.rows, self.crash_at = [], crash_at

    def on_train_begin(self, logs=None):
        self.last = int(self.model.count.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = int(float(logs["count"]))
        if step > self.last:  # not a no-op step of a resumed run
            self.last = step
            self.rows.append((step, self.epoch, batch, float(logs["fp"])))
        if step == self.crash_at:
            raise Crash()


@pytest.fixture(scope="module")
def rec_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("records"))
    write_records(out, random_images(50, size=4), np.zeros(50, int), shards=(3, 1, 1))
    return out  # 30 train records


def _stream(rec_dir, batch_size=4):
    return data.load(f"records:{rec_dir}", batch_size=batch_size, seed=5, shuffle_buffer=8,
                     repeat=True, with_info=True)


def _fit(rec_dir, backup, record, cls=StreamingBackupAndRestore, save_freq=1, epochs=3,
         strategy=None):
    ds, info = _stream(rec_dir)
    model = _probe(strategy)
    model.fit(ds, epochs=epochs, steps_per_epoch=info.steps_per_epoch, verbose=0,
              callbacks=[cls(str(backup), save_freq=save_freq, delete_checkpoint=False),
                         record])
    return model


@pytest.mark.parametrize("save_freq,crash_at", [(1, 17), ("epoch", 16)])
def test_endless_stream_resumes_where_it_stopped(rec_dir, tmp_path, save_freq, crash_at):
    full = Record()
    reference = _fit(rec_dir, tmp_path / "full", full)  # 7 steps per epoch, 21 in all
    assert [r[1:3] for r in full.rows] == [(e, b) for e in range(3) for b in range(7)]
    with pytest.raises(Crash):
        _fit(rec_dir, tmp_path / "b", Record(crash_at=crash_at), save_freq=save_freq)
    meta = json.load(open(tmp_path / "b" / "backup.json"))
    assert meta["iterator_state"]
    assert meta["step"] == (crash_at if save_freq == 1 else 14)
    resumed = Record()
    model = _fit(rec_dir, tmp_path / "b", resumed, save_freq=save_freq)
    assert resumed.rows == full.rows[meta["step"]:]
    assert float(model.w.numpy()) == float(reference.w.numpy())


def test_under_mirrored_strategy_the_endless_stream_is_replayed(rec_dir, tmp_path):
    """MultiDeviceIterators cannot be checkpointed: the backup says the stream is endless
    and the restart draws and drops the batches of every step before it."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    full = Record()
    _fit(rec_dir, tmp_path / "full", full, strategy=strategy)
    with pytest.raises(Crash):
        _fit(rec_dir, tmp_path / "b", Record(crash_at=9), strategy=strategy)
    meta = json.load(open(tmp_path / "b" / "backup.json"))
    assert meta["endless"] and "iterator_state" not in meta
    assert (meta["step"], meta["epoch"], meta["batch"]) == (9, 1, 2)
    assert not [f for f in os.listdir(tmp_path / "b") if f.startswith("iter-")]
    resumed = Record()
    _fit(rec_dir, tmp_path / "b", resumed, strategy=strategy)
    assert resumed.rows == full.rows[9:] and len(resumed.rows) == 12


def test_endless_stream_without_steps_per_epoch(rec_dir, tmp_path):
    ds, _ = _stream(rec_dir)
    with pytest.raises(ValueError, match="endless dataset but no steps_per_epoch"):
        _probe().fit(ds, epochs=1, verbose=0,
                     callbacks=[StreamingBackupAndRestore(str(tmp_path / "b"), save_freq=1)])


def test_input_that_cannot_be_checkpointed(tmp_path):
    def images():
        for _ in range(6):
            yield np.zeros((2, 4, 4, 3), np.float32)

    ds = tf.data.Dataset.from_generator(
        images, output_signature=tf.TensorSpec((2, 4, 4, 3), tf.float32))
    with pytest.raises(ValueError, match="cannot checkpoint the input iterator.*"
                                         "from_generator"):
        _probe().fit(ds, epochs=1, verbose=0,
                     callbacks=[StreamingBackupAndRestore(str(tmp_path / "b"), save_freq=1)])


def test_endless_stream_refuses_a_backup_without_iterator_state(rec_dir, tmp_path):
    with pytest.raises(Crash):
        _fit(rec_dir, tmp_path / "b", Record(crash_at=3), cls=BackupAndRestore)
    assert "iterator_state" not in json.load(open(tmp_path / "b" / "backup.json"))
    with pytest.raises(ValueError, match="step 3 without iterator state"):
        _fit(rec_dir, tmp_path / "b", Record())


def test_iterator_state_of_another_dataset(rec_dir, tmp_path):
    with pytest.raises(Crash):
        _fit(rec_dir, tmp_path / "b", Record(crash_at=3))
    ds = data.load(f"records:{rec_dir}", batch_size=4, seed=5, shuffle_buffer=8)  # ends
    with pytest.raises(ValueError, match="does not fit this run's dataset"):
        _probe().fit(ds, epochs=1, verbose=0, callbacks=[
            StreamingBackupAndRestore(str(tmp_path / "b"), save_freq=1)])
    assert os.path.exists(tmp_path / "b" / "backup.json")

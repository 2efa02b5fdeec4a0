"""BackupAndRestore that also saves the tf.data iterator position (for streamed data)."""

import glob
import json
import os
import re

import keras

from keras_aigc.callbacks.backup_and_restore import PREVIOUS, BackupAndRestore
from keras_aigc.distribute.cluster import task_from_tf_config

_ITER = re.compile(r"^iter-(\d+)\.(\w+)\.(index|data-\d+-of-\d+)$")


def _checkpointable(iterator):
    """Whether `tf.train.Checkpoint` can save `iterator`. A plain tf.data iterator can;
    the DistributedIterator of MirroredStrategy / MultiWorkerMirroredStrategy holds
    MultiDeviceIterators, which TensorFlow (2.21) cannot checkpoint."""
    import tensorflow as tf

    try:
        tf.train.Checkpoint(iterator=iterator)
    except ValueError:
        return False
    return True


@keras.saving.register_keras_serializable(package="keras_aigc")
class StreamingBackupAndRestore(BackupAndRestore):
    """`BackupAndRestore` that resumes the input pipeline with tf.data iterator checkpointing.

    The base callback resumes mid-epoch by drawing and dropping the batches already
    trained on, which re-reads (and re-decodes) them. For streamed `records:` data this
    callback instead saves the position of the iterator `fit` trains from, with
    `tf.train.Checkpoint(iterator=...)`, next to each backup; on restart it restores that
    iterator before the first step, so the next batch is the one the uninterrupted run
    would have drawn, without replaying anything. The steps of the resumed epoch done
    before the backup run as no-op steps (they neither train nor draw a batch), so the
    epoch keeps its length and batch indices.

    Resume is step-exact across epochs with an endless stream,
    `keras_aigc.data.load("records:DIR", repeat=True, with_info=True)` and
    `fit(steps_per_epoch=info.steps_per_epoch)`: `fit` then keeps one iterator for the
    whole run, every backup (epoch ends included) saves it, and each pass over the data
    is shuffled with seeds of `(seed, pass)`, so a restored iterator continues the very
    stream the uninterrupted run reads. With a dataset that ends, `fit` starts each epoch
    on a fresh iterator whose reshuffle seeds are not part of any checkpoint: a backup
    taken mid-epoch resumes exactly within that epoch, an epoch-end backup starts the next
    epoch in another order.

    Under `MirroredStrategy` and `MultiWorkerMirroredStrategy`, `fit` reads from a
    `DistributedIterator` of MultiDeviceIterators, which TensorFlow (2.21) cannot
    checkpoint. There the backup records that the stream is endless instead, and a restart
    replays it: the restored run draws and drops the batches of every step done before the
    backup (input pipeline only, no training), then trains on from the same position. That
    is exact, because the endless stream is a fixed sequence for its seed, but it costs
    reading the data up to the backup once more. Where the iterator can be checkpointed,
    each task saves its own as `iter-<step>.<task>.*` in `backup_dir` (storage all tasks
    see); the state holds the current shuffle window, so it grows with `shuffle_buffer`.
    A run must resume with the seeds (`keras.utils.set_random_seed`, the loader's `seed`),
    batch size and strategy layout it started with.

    Raises `ValueError` at the first step when the input is not a checkpointable
    `tf.data` pipeline, when an endless stream is fitted without `steps_per_epoch`, or
    when an endless stream would resume from a backup that neither holds iterator state
    nor says the stream was endless (one written by `BackupAndRestore`).

    Args:
        backup_dir: str. Directory of the backup.
        save_freq: `"epoch"` or int. Back up at each epoch end, or every `save_freq` steps.
        delete_checkpoint: bool. Remove the backup when training finishes.

    Example:

    ```python
    ds, info = keras_aigc.data.load("records:prepared/faces", batch_size=64, repeat=True,
                                    with_info=True)
    gan.fit(ds, epochs=10, steps_per_epoch=info.steps_per_epoch, callbacks=[
        keras_aigc.callbacks.StreamingBackupAndRestore("runs/x/backup", save_freq=500)])
    ```
    """

    def _task(self):
        task_type, task_id, _ = task_from_tf_config()
        return f"{task_type}{task_id}" if task_type else "worker0"

    def _iter_prefix(self, step):
        return os.path.join(self.backup_dir, f"iter-{step}.{self._task()}")

    def _wrap_train_function(self):
        # The base class would replay the steps done before the backup by drawing their
        # batches; `capture` decides how to skip once it sees the input.
        pass

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # restores the model, counts the steps to skip
        self._iterator = None
        self._endless = False
        self._checkpointable = False
        self._first_call = True
        self._restore_prefix = None
        meta = self.restored
        if meta and meta.get("iterator_state"):
            prefix = self._iter_prefix(int(meta["step"]))
            if not os.path.exists(prefix + ".index"):
                raise FileNotFoundError(
                    f"backup_dir={self.backup_dir!r}: backup.json says the input iterator "
                    f"was saved, but {prefix + '.index'!r} is missing (was backup_dir on "
                    "storage every task sees?). Delete backup_dir to start over.")
            self._restore_prefix = prefix
        if self.model.train_function is None:
            self.model.make_train_function()
        original = self.model.train_function
        spe = self._steps_per_execution()

        def capture(iterator):
            if self._first_call:
                self._first_call = False
                self._check_input(iterator)
                self._start_endless_replay(iterator)
            if self._to_skip > 0:
                # A step done before the backup: no training. A restored iterator is
                # already past its batch; a fresh one (no saved state) drops it.
                self._to_skip -= 1
                self._skipping = True
                if self._restore_prefix is None:
                    for _ in range(spe):
                        next(iterator)
                return dict(self._stale_logs)
            self._skipping = False
            if self._restore_prefix is not None:
                self._read_iterator(iterator, self._restore_prefix)
                self._restore_prefix = None
            self._iterator = iterator
            return original(iterator)

        self.model.train_function = capture
        self._capture_original = original

    def _check_input(self, iterator):
        import tensorflow as tf

        cardinality = getattr(iterator, "_cardinality", None)  # a DistributedIterator
        if cardinality is None and getattr(iterator, "_dataset", None) is not None:
            cardinality = int(iterator._dataset.cardinality())
        if cardinality is None:
            raise ValueError(
                f"StreamingBackupAndRestore saves the tf.data iterator fit trains from, but "
                f"fit's input gave a {type(iterator).__name__}. Pass a tf.data.Dataset "
                "(e.g. keras_aigc.data.load('records:DIR')), or use BackupAndRestore.")
        self._endless = int(cardinality) == int(tf.data.INFINITE_CARDINALITY)
        self._checkpointable = _checkpointable(iterator)
        if self._restore_prefix is not None and not self._checkpointable:
            # Saved where the iterator could be checkpointed, resumed where it cannot
            # (e.g. under another strategy): replay instead (see `_start_endless_replay`;
            # within the epoch for a dataset that ends).
            self._restore_prefix = None
        if not self._endless:
            return
        if not self.params.get("steps"):
            raise ValueError(
                "StreamingBackupAndRestore: fit got an endless dataset but no "
                "steps_per_epoch, so its first epoch never ends and no epoch-end backup is "
                "ever written. Pass fit(steps_per_epoch=info.steps_per_epoch) (from "
                "keras_aigc.data.load(..., repeat=True, with_info=True)).")
        meta = self.restored
        if meta and int(meta.get("step", 0)) > 0 and not (meta.get("iterator_state")
                                                          or meta.get("endless")):
            raise ValueError(
                f"backup_dir={self.backup_dir!r} holds a backup at step {meta['step']} "
                "without iterator state (written by BackupAndRestore, or by a run on a "
                "dataset that ends); an endless stream cannot be placed at that step, a new "
                "iterator would start over at the first pass. Resume with the callback "
                f"and data the backup was made with, or {self._start_over()}.")

    def _start_endless_replay(self, iterator):
        """Endless stream, no iterator state to restore: the stream is a fixed sequence
        (seeded per pass), so draw and drop the batches of every step done before the
        resumed epoch; the skip steps then replay the resumed epoch's done steps."""
        meta = self.restored
        if not (self._endless and meta and self._restore_prefix is None):
            return
        earlier = int(meta["step"]) - int(meta["batch"])
        for _ in range(earlier):
            next(iterator)

    def _read_iterator(self, iterator, prefix):
        import tensorflow as tf

        try:
            tf.train.Checkpoint(iterator=iterator).read(prefix).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError) as e:
            raise ValueError(
                f"backup_dir={self.backup_dir!r}: the saved input iterator {prefix!r} does "
                f"not fit this run's dataset ({type(e).__name__}: {str(e)[:300]}). Resume "
                "with the dataset the backup was made with (same source, split, batch size, "
                f"shuffle options, repeat), or {self._start_over()}.") from e

    def _save_model(self):
        if self._iterator is not None and self._checkpointable:
            import tensorflow as tf

            try:
                tf.train.Checkpoint(iterator=self._iterator).write(
                    self._iter_prefix(self._step))
            except tf.errors.OpError as e:
                raise ValueError(
                    "StreamingBackupAndRestore cannot checkpoint the input iterator of fit "
                    f"({type(e).__name__}: {str(e)[:300]}). Its dataset holds state tf.data "
                    "cannot save (e.g. Dataset.from_generator or a py_function). Stream "
                    "with keras_aigc.data.load('records:DIR'), or use BackupAndRestore.") \
                    from e
        self._iterator_saved = self._iterator is not None and self._checkpointable
        super()._save_model()
        keep = {self._step}
        previous = os.path.join(self.backup_dir, PREVIOUS)
        if os.path.exists(previous):  # its iterator too: the fallback when backup.json breaks
            try:
                keep.add(int(self._parse_metadata(previous)["step"]))
            except Exception:  # noqa: BLE001 - an unreadable record keeps nothing
                pass
        mine = f".{self._task()}."
        for path in glob.glob(os.path.join(self.backup_dir, "iter-*")):
            m = _ITER.match(os.path.basename(path))
            if m and mine in os.path.basename(path) and int(m.group(1)) not in keep:
                os.remove(path)

    def _write_metadata(self, directory, files, digests=None):
        super()._write_metadata(directory, files, digests)
        # An endless stream's iterator lives on across epochs, so its state matters at an
        # epoch end too; a dataset that ends starts each epoch on a fresh iterator.
        state = getattr(self, "_iterator_saved", False) and (self._batch_in_epoch > 0
                                                             or self._endless)
        if state or self._endless:
            with open(os.path.join(directory, "backup.json")) as f:
                meta = json.load(f)
            if state:
                meta["iterator_state"] = True
            if self._endless:  # without iterator state it can still be replayed
                meta["endless"] = True
            self._write_json(directory, "backup.json", meta)  # atomic and fsync'd

    def on_train_end(self, logs=None):
        if getattr(self, "_capture_original", None) is not None:
            self.model.train_function = self._capture_original
            self._capture_original = None
        super().on_train_end(logs)
        if self.delete_checkpoint:
            for path in glob.glob(self._iter_prefix("*") + "*"):
                os.remove(path)

"""BackupAndRestore that also saves the tf.data iterator position (for streamed data)."""

import glob
import json
import os
import re

import keras

from keras_aigc.callbacks.backup_and_restore import BackupAndRestore
from keras_aigc.distribute.cluster import task_from_tf_config

_ITER = re.compile(r"^iter-(\d+)\.(\w+)\.(index|data-\d+-of-\d+)$")


@keras.saving.register_keras_serializable(package="keras_aigc")
class StreamingBackupAndRestore(BackupAndRestore):
    """`BackupAndRestore` that resumes the input pipeline with tf.data iterator checkpointing.

    The base callback resumes mid-epoch by drawing and dropping the batches already
    trained on, which re-reads (and re-decodes) them. For streamed `records:` data this
    callback instead saves the position of the iterator `fit` trains from, with
    `tf.train.Checkpoint(iterator=...)`, next to each backup; on restart it restores that
    iterator before the first step, so the next batch is the one the uninterrupted run
    would have drawn, without replaying anything. Backups without an iterator state
    (e.g. taken at an epoch end) fall back to the base behaviour.

    Every task of a multi-worker run saves its own iterator (it reads its own shards) as
    `iter-<step>.<task>.*` in `backup_dir`, which must be storage all tasks see. The
    iterator state holds the shuffle buffer, so its size grows with `shuffle_buffer`.

    Args:
        backup_dir: str. Directory of the backup.
        save_freq: `"epoch"` or int. Back up at each epoch end, or every `save_freq` steps.
        delete_checkpoint: bool. Remove the backup when training finishes.

    Example:

    ```python
    ds = keras_aigc.data.load("records:prepared/faces", batch_size=64)
    gan.fit(ds, epochs=10, callbacks=[
        keras_aigc.callbacks.StreamingBackupAndRestore("runs/x/backup", save_freq=500)])
    ```
    """

    def _task(self):
        task_type, task_id, _ = task_from_tf_config()
        return f"{task_type}{task_id}" if task_type else "worker0"

    def _iter_prefix(self, step):
        return os.path.join(self.backup_dir, f"iter-{step}.{self._task()}")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._iterator = None
        self._restore_prefix = None
        meta = self.restored
        if meta and int(meta.get("batch", 0)) > 0 and meta.get("iterator_state"):
            prefix = self._iter_prefix(int(meta["step"]))
            if not os.path.exists(prefix + ".index"):
                raise FileNotFoundError(
                    f"backup_dir={self.backup_dir!r}: backup.json says the input iterator "
                    f"was saved, but {prefix + '.index'!r} is missing (was backup_dir on "
                    "storage every task sees?). Delete backup_dir to start over.")
            # Resume the saved iterator instead of replaying the trained batches.
            self._unwrap_train_function()
            self._to_skip = 0
            self._restore_prefix = prefix
        if self.model.train_function is None:
            self.model.make_train_function()
        original = self.model.train_function

        def capture(iterator):
            if self._restore_prefix is not None:
                import tensorflow as tf

                tf.train.Checkpoint(iterator=iterator).read(self._restore_prefix) \
                    .assert_consumed()
                self._restore_prefix = None
            self._iterator = iterator
            return original(iterator)

        if self._original_train_function is not None:
            # The base class is skipping steps; hand the capture back when it unwraps.
            self._original_train_function = capture
        else:
            self.model.train_function = capture
        self._capture_original = original

    def _save_model(self):
        if self._iterator is not None:
            import tensorflow as tf

            tf.train.Checkpoint(iterator=self._iterator).write(self._iter_prefix(self._step))
        self._iterator_saved = self._iterator is not None
        super()._save_model()
        mine = f".{self._task()}."
        for path in glob.glob(os.path.join(self.backup_dir, "iter-*")):
            m = _ITER.match(os.path.basename(path))
            if m and mine in os.path.basename(path) and int(m.group(1)) != self._step:
                os.remove(path)

    def _write_metadata(self, directory, files, digests=None):
        super()._write_metadata(directory, files, digests)
        if getattr(self, "_iterator_saved", False) and self._batch_in_epoch > 0:
            with open(os.path.join(directory, "backup.json")) as f:
                meta = json.load(f)
            meta["iterator_state"] = True
            self._write_json(directory, "backup.json", meta)  # atomic and fsync'd

    def on_train_end(self, logs=None):
        if getattr(self, "_capture_original", None) is not None:
            self.model.train_function = self._capture_original
            self._capture_original = None
        super().on_train_end(logs)
        if self.delete_checkpoint:
            for path in glob.glob(self._iter_prefix("*") + "*"):
                os.remove(path)

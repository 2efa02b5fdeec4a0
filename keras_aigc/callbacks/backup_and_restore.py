"""Chief-aware backup and restore that resumes at the saved step, not the epoch start."""

import glob
import json
import os
import re
import warnings

import keras
import numpy as np

from keras_aigc.distribute.cluster import is_chief
from keras_aigc.distribute.worker_dirs import chief_or_temp_dir, cleanup_temp_dir
from keras_aigc_runtime.manifest import sha256_file

_CKPT = re.compile(r"^ckpt-(\d+)\.(weights\.h5|state\.npz)$")
PREVIOUS = "backup.prev.json"


class CorruptBackupError(ValueError):
    """No usable backup in `backup_dir`: every candidate is corrupt or incomplete.

    The message names each file and what is wrong with it, and says how to start over.
    """


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory):
    """Makes renames in `directory` durable (a power cut after it keeps them)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


class _Unusable(Exception):
    """One backup candidate is corrupt or incomplete (the next one is tried)."""


def _extra_variables(model):
    """Model state that `save_weights` leaves out: SeedGenerator states and any other
    variable of `model.variables` that is not a layer weight (e.g. an EMA kept as plain
    variables). Ordered as in `model.variables`, which is stable for one architecture."""
    weight_ids = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]


@keras.saving.register_keras_serializable(package="keras_aigc")
class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore`, made cluster-aware and step-exact.

    What it adds to `keras.callbacks.BackupAndRestore`:

    - Chief-only files: under a multi-worker strategy every task runs the same save (so
      collectives stay in step), but only the chief writes to `backup_dir`; the others
      write to a temporary sibling directory and remove it right away (tf_keras'
      worker_training_state behaviour). Every task restores from `backup_dir`, which must
      be on storage all tasks see.
    - Step-exact resume: the backup records the epoch and the steps done in it. On
      restart, `fit` starts at that epoch and the first `batch` steps of it are skipped:
      their batches are drawn from the iterator and dropped without training, so a run
      killed during its first epoch sees exactly the batches it would have seen.
    - Full state: `save_weights` already stores the model and both optimizers of a GAN
      (hence their `iterations`, which key the GAN's stateless latent stream); this adds
      the variables it leaves out, i.e. `keras.random.SeedGenerator` states (dropout) and
      EMA or other non-weight variables.
    - Crash-safe writes: files go to `ckpt-<step>.*`, are fsync'd with their directory,
      and `backup.json` (with the files' sha256) is replaced atomically last; the
      previous good backup stays, named by `backup.prev.json`, until the new one is
      complete. On restore a corrupt, truncated or missing piece is detected (sha256,
      parse) and the previous backup is used instead, with a warning; when no backup
      is usable a `CorruptBackupError` names the files and how to start over. Training
      never starts silently from scratch over a damaged backup.

    Args:
        backup_dir: str. Directory of the backup (on the chief).
        save_freq: `"epoch"` or int. Back up at each epoch end, or every `save_freq`
            training steps (a multiple of `steps_per_execution`). Defaults to `"epoch"`.
        delete_checkpoint: bool. Remove the backup when training finishes.
            Defaults to `True`.

    Example:

    ```python
    gan.fit(ds, epochs=10, callbacks=[
        keras_aigc.callbacks.BackupAndRestore("runs/x/backup", save_freq=100)])
    ```
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        if isinstance(save_freq, bool) or not (
                save_freq == "epoch" or (isinstance(save_freq, int) and save_freq >= 1)):
            raise ValueError(f"save_freq must be 'epoch' or a positive integer, got "
                             f"save_freq={save_freq!r}.")
        if not isinstance(backup_dir, (str, os.PathLike)) or not str(backup_dir):
            raise ValueError(f"backup_dir must be a non-empty path, got {backup_dir!r}.")
        super().__init__(str(backup_dir), save_freq=save_freq, double_checkpoint=False,
                         delete_checkpoint=delete_checkpoint)
        self._metadata_path = os.path.join(self.backup_dir, "backup.json")
        self._reset_counters()

    def _reset_counters(self):
        self._epoch = 0
        self._batch_in_epoch = 0
        self._step = 0
        self._last_saved_step = None
        self._to_skip = 0
        self._skipping = False
        self._stale_logs = {}
        self._begin = 0
        self._original_train_function = None
        self.restored = None

    def get_config(self):
        return {"backup_dir": self.backup_dir, "save_freq": self.save_freq,
                "delete_checkpoint": self.delete_checkpoint}

    # ------------------------------------------------------------------ state
    @property
    def _strategy(self):
        return self.model.distribute_strategy

    def read_metadata(self, name="backup.json"):
        """The metadata dict of a backup (`backup.json`, or `backup.prev.json` for the
        previous one), or `None` when there is none.

        Raises:
            CorruptBackupError: the file is not a valid backup record.
        """
        path = os.path.join(self.backup_dir, name)
        if not os.path.exists(path):
            return None
        try:
            return self._parse_metadata(path)
        except _Unusable as e:
            raise CorruptBackupError(f"{path}: {e}. {self._start_over()}") from None

    def _start_over(self):
        return (f"Delete backup_dir={self.backup_dir!r} (rm -r) to start training over from "
                f"scratch, or restore it from a copy")

    @staticmethod
    def _parse_metadata(path):
        try:
            with open(path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError, RecursionError) as e:
            raise _Unusable(f"not a readable backup record ({type(e).__name__}: "
                            f"{str(e)[:200]})") from None
        fields = {"epoch": int, "batch": int, "step": int, "weights": str, "state": str}
        if not isinstance(meta, dict) or any(
                isinstance(meta.get(k), bool) or not isinstance(meta.get(k), t)
                for k, t in fields.items()):
            raise _Unusable(f"a backup record needs {sorted(fields)} with int/str values")
        for k in ("weights", "state"):
            if os.path.basename(meta[k]) != meta[k] or not _CKPT.match(meta[k]):
                raise _Unusable(f"{k}={meta[k][:100]!r} is not a ckpt-<step> file name")
        return meta

    def _steps_per_execution(self):
        return int(getattr(self.model, "steps_per_execution", 1) or 1)

    # --------------------------------------------------------------- restoring
    def on_train_begin(self, logs=None):
        self._reset_counters()
        self._load_model()

    def _load_model(self):
        from keras_aigc.models.base import GenerativeModel

        if not isinstance(self.model, GenerativeModel):
            raise ValueError(
                f"BackupAndRestore restores keras_aigc.models.GenerativeModel subclasses (their "
                f"optimizers and extra state); got {type(self.model).__name__}. Use "
                "keras.callbacks.BackupAndRestore for other models.")
        if not self.model.built:
            raise ValueError(
                "BackupAndRestore needs a built model before fit(); build it (e.g. "
                "model.build() or call it on a batch) first.")
        problems = []
        for name in ("backup.json", PREVIOUS):
            path = os.path.join(self.backup_dir, name)
            if not os.path.exists(path):
                if name == "backup.json" and os.path.exists(
                        os.path.join(self.backup_dir, PREVIOUS)):
                    problems.append(f"{path}: missing")
                continue
            try:
                meta = self._parse_metadata(path)
                self._check_files(meta)
            except _Unusable as e:
                problems.append(f"{path}: {e}")
                continue
            if problems:
                warnings.warn(f"BackupAndRestore: the latest backup is unusable "
                              f"({'; '.join(problems)}); resuming from the previous good "
                              f"backup {path} (step {meta['step']}).", stacklevel=2)
            self._restore(meta)
            return
        leftovers = sorted(f for f in (os.listdir(self.backup_dir)
                                       if os.path.isdir(self.backup_dir) else [])
                           if _CKPT.match(f))
        if problems or leftovers:
            found = "; ".join(problems) or (f"checkpoint files {leftovers} but no "
                                            f"backup.json or {PREVIOUS}")
            raise CorruptBackupError(
                f"backup_dir={self.backup_dir!r} holds no usable backup: {found}. The backup "
                f"is incomplete or corrupt. {self._start_over()}.")

    def _check_files(self, meta):
        for key in ("weights", "state"):
            path = os.path.join(self.backup_dir, meta[key])
            if not os.path.isfile(path):
                raise _Unusable(f"it names {path!r}, which does not exist (the backup is "
                                f"incomplete)")
            want = (meta.get("sha256") or {}).get(key)
            if want is not None and sha256_file(path) != want:
                raise _Unusable(f"{meta[key]} does not match its sha256 (truncated or "
                                f"corrupt)")
        if not meta.get("sha256"):  # a backup from before sha256 records: try to read it
            try:
                with np.load(os.path.join(self.backup_dir, meta["state"])) as saved:
                    saved.files  # noqa: B018 - reads the zip directory
            except Exception as e:  # noqa: BLE001 - any parser error means corrupt
                raise _Unusable(f"{meta['state']} is unreadable ({type(e).__name__})") \
                    from None

    def _restore(self, meta):
        weights = os.path.join(self.backup_dir, meta["weights"])
        state = os.path.join(self.backup_dir, meta["state"])
        self.model.build_optimizers()  # the contract builds all of a model's optimizers
        self.model.load_weights(weights)
        extra = _extra_variables(self.model)
        with np.load(state) as saved:
            if len(saved.files) != len(extra):
                raise ValueError(
                    f"backup_dir={self.backup_dir!r} holds {len(saved.files)} extra state "
                    f"variables but the model has {len(extra)}; it is a backup of another "
                    "model.")
            for i, v in enumerate(extra):
                v.assign(saved[f"v{i}"])
        self._epoch = int(meta["epoch"])
        self._batch_in_epoch = int(meta["batch"])
        self._step = int(meta["step"])
        self._last_saved_step = self._step
        self._stale_logs = dict(meta.get("logs") or {})
        self.model._initial_epoch = self._epoch
        spe = self._steps_per_execution()
        if self._batch_in_epoch % spe:
            raise ValueError(
                f"The backup was taken after {self._batch_in_epoch} steps of epoch "
                f"{self._epoch}, which is not a multiple of steps_per_execution={spe}; "
                "resume with the steps_per_execution it was saved with.")
        self._to_skip = self._batch_in_epoch // spe
        self.restored = dict(meta)
        if self._to_skip:
            self._wrap_train_function()

    def _wrap_train_function(self):
        if self.model.train_function is None:
            self.model.make_train_function()
        original = self.model.train_function
        self._original_train_function = original
        spe = self._steps_per_execution()

        def skip_or_train(iterator):
            if self._to_skip > 0:
                # Steps done before the backup: drop their batches, do not train.
                self._to_skip -= 1
                self._skipping = True
                for _ in range(spe):
                    next(iterator)
                return dict(self._stale_logs)
            self._skipping = False
            return original(iterator)

        self.model.train_function = skip_or_train

    def _unwrap_train_function(self):
        if self._original_train_function is not None:
            self.model.train_function = self._original_train_function
            self._original_train_function = None

    # ------------------------------------------------------------------ saving
    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        self._batch_in_epoch = batch + 1
        if self._skipping:
            self._skipping = False
            return
        if self._to_skip == 0:
            self._unwrap_train_function()
        before = self._step
        self._step += batch - self._begin + 1
        if logs:
            self._stale_logs = {k: float(np.asarray(v).reshape(-1)[0])
                                for k, v in logs.items()}
        if self.save_freq != "epoch" and (self._step // self.save_freq
                                          > before // self.save_freq):
            self._save_model()

    def on_epoch_end(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._batch_in_epoch = 0
        if self.save_freq == "epoch" or self._last_saved_step != self._step:
            if self.save_freq == "epoch":
                self._save_model()
            return
        # Saved at this very step: only move the resume point past the epoch end.
        strategy = self._strategy
        directory = chief_or_temp_dir(self.backup_dir, strategy)
        os.makedirs(directory, exist_ok=True)
        self._write_metadata(directory, self._files_for(self._step))
        if not is_chief(strategy):
            cleanup_temp_dir(self.backup_dir, strategy)

    def _files_for(self, step):
        return f"ckpt-{step}.weights.h5", f"ckpt-{step}.state.npz"

    def _write_metadata(self, directory, files, digests=None):
        meta = {"epoch": self._epoch, "batch": self._batch_in_epoch, "step": self._step,
                "weights": files[0], "state": files[1], "logs": self._stale_logs}
        current = os.path.join(directory, "backup.json")
        if digests is None and os.path.exists(current):  # same files, new resume point
            try:
                digests = self._parse_metadata(current).get("sha256")
            except _Unusable:
                digests = None
        if digests:
            meta["sha256"] = digests
        self._write_json(directory, "backup.json", meta)

    @staticmethod
    def _write_json(directory, name, meta):
        tmp = os.path.join(directory, name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, name))
        _fsync_dir(directory)

    def _save_model(self):
        strategy = self._strategy
        directory = chief_or_temp_dir(self.backup_dir, strategy)
        os.makedirs(directory, exist_ok=True)
        weights, state = self._files_for(self._step)
        tmp_weights = os.path.join(directory, f"tmp-{self._step}.weights.h5")
        # Every task runs the same reads (collectives stay in step); only the chief's
        # files are kept.
        self.model.save_weights(tmp_weights, overwrite=True)
        values = {f"v{i}": np.asarray(v.numpy())
                  for i, v in enumerate(_extra_variables(self.model))}
        tmp_state = os.path.join(directory, f"tmp-{self._step}.state.npz")
        np.savez(tmp_state, **values)
        for tmp in (tmp_weights, tmp_state):
            _fsync_file(tmp)
        digests = {"weights": sha256_file(tmp_weights), "state": sha256_file(tmp_state)}
        os.replace(tmp_weights, os.path.join(directory, weights))
        os.replace(tmp_state, os.path.join(directory, state))
        _fsync_dir(directory)
        # The current backup becomes the previous one only once the new files are
        # durable; backup.json is replaced last.
        current = os.path.join(directory, "backup.json")
        keep = {weights, state}
        previous = None
        if os.path.exists(current):
            try:
                previous = self._parse_metadata(current)
            except _Unusable:
                previous = None
        if previous is not None and previous["weights"] != weights:
            self._write_json(directory, PREVIOUS, previous)
            keep |= {previous["weights"], previous["state"]}
        elif os.path.exists(os.path.join(directory, PREVIOUS)):
            try:
                prev = self._parse_metadata(os.path.join(directory, PREVIOUS))
                keep |= {prev["weights"], prev["state"]}
            except _Unusable:
                pass
        self._write_metadata(directory, (weights, state), digests)
        for path in glob.glob(os.path.join(directory, "ckpt-*")):
            if _CKPT.match(os.path.basename(path)) and os.path.basename(path) not in keep:
                os.remove(path)
        self._last_saved_step = self._step
        if not is_chief(strategy):
            cleanup_temp_dir(self.backup_dir, strategy)

    def on_train_end(self, logs=None):
        self._unwrap_train_function()
        if self.delete_checkpoint and is_chief(self._strategy):
            import shutil

            shutil.rmtree(self.backup_dir, ignore_errors=True)

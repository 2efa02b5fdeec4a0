"""BackupAndRestore: step-exact resume, full state, chief-only files, clear errors."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aigc as ka
from keras_aigc.callbacks import BackupAndRestore

STEPS_PER_EPOCH, EPOCHS = 4, 2


def _data():
    x, _, _ = ka.data.load_arrays("digits")
    x = (x[:64].astype("float32") / 127.5 - 1.0)
    # Reshuffled every epoch: a resumed fit must still see the same batches.
    return tf.data.Dataset.from_tensor_slices(x).shuffle(64, seed=5).batch(16)


def _gan(dropout=0.3):
    keras.utils.set_random_seed(0)
    gan = ka.models.DCGAN(image_shape=(32, 32, 1), latent_dim=8, g_filters=(8, 4),
                          d_filters=(4,), kernel_size=3, dropout=dropout, seed=11)
    gan.compile()
    return gan


class Crash(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.g_optimizer.iterations.numpy()) == self.at_step:
            raise RuntimeError("simulated crash")


@pytest.mark.slow
def test_resume_mid_epoch_equals_uninterrupted(tmp_path):
    """Crash after step 5 with backups every 3 steps; the restarted fit resumes at step 3
    (epoch 0, batch 3), trains the rest, and ends with exactly the weights of a run that
    never crashed: both optimizers, dropout's SeedGenerator, the latent stream (keyed on
    g_optimizer.iterations) and the data position are restored."""
    ref = _gan()
    ref.fit(_data(), epochs=EPOCHS, verbose=0)

    backup_dir = str(tmp_path / "backup")
    crashed = _gan()
    with pytest.raises(RuntimeError, match="simulated crash"):
        crashed.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=[
            BackupAndRestore(backup_dir, save_freq=3), Crash(5)])
    with open(os.path.join(backup_dir, "backup.json")) as f:
        meta = json.load(f)
    assert (meta["epoch"], meta["batch"], meta["step"]) == (0, 3, 3)
    assert sorted(os.listdir(backup_dir)) == ["backup.json", "ckpt-3.state.npz",
                                              "ckpt-3.weights.h5"]

    keras.utils.set_random_seed(123)  # a different init: everything must come from disk
    resumed = ka.models.DCGAN(image_shape=(32, 32, 1), latent_dim=8, g_filters=(8, 4),
                              d_filters=(4,), kernel_size=3, dropout=0.3, seed=11)
    resumed.compile()
    keras.utils.set_random_seed(0)  # the restarted script: tf.data's shuffle seed
    callback = BackupAndRestore(backup_dir, save_freq=3)
    trained = []
    step_log = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: trained.append(
        int(resumed.g_optimizer.iterations.numpy())))
    history = resumed.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=[callback, step_log])
    assert callback.restored["step"] == 3
    # The 3 skipped calls train nothing; then steps 4..8.
    assert trained == [3, 3, 3, 4, 5, 6, 7, 8]
    assert len(history.history["g_loss"]) == EPOCHS
    assert int(resumed.d_optimizer.iterations.numpy()) == EPOCHS * STEPS_PER_EPOCH
    for a, b in zip(ref.variables, resumed.variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.path)
    for opt_ref, opt in ((ref.g_optimizer, resumed.g_optimizer),
                         (ref.d_optimizer, resumed.d_optimizer)):
        for a, b in zip(opt_ref.variables, opt.variables, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    assert not os.path.exists(backup_dir)  # delete_checkpoint=True after a finished fit


@pytest.mark.slow
def test_epoch_backup_resumes_at_next_epoch(tmp_path):
    backup_dir = str(tmp_path / "backup")
    gan = _gan()
    with pytest.raises(RuntimeError):
        gan.fit(_data(), epochs=EPOCHS, verbose=0,
                callbacks=[BackupAndRestore(backup_dir), Crash(6)])
    with open(os.path.join(backup_dir, "backup.json")) as f:
        meta = json.load(f)
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 0, 4)
    again = _gan()
    history = again.fit(_data(), epochs=EPOCHS, verbose=0,
                        callbacks=[BackupAndRestore(backup_dir, delete_checkpoint=False)])
    assert len(history.history["g_loss"]) == 1  # only the second epoch ran
    assert int(again.g_optimizer.iterations.numpy()) == 8


def test_non_chief_writes_only_to_a_removed_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1}}))
    backup_dir = str(tmp_path / "backup")
    gan = _gan(dropout=0.0)
    gan.fit(_data(), epochs=1, verbose=0,
            callbacks=[BackupAndRestore(backup_dir, save_freq=1, delete_checkpoint=False)])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("save_freq", [0, -2, "batch", True, 1.5])
def test_bad_save_freq(tmp_path, save_freq):
    with pytest.raises(ValueError, match=f"save_freq must be 'epoch' or a positive integer, "
                                         f"got save_freq={save_freq!r}"):
        BackupAndRestore(str(tmp_path), save_freq=save_freq)


@pytest.mark.parametrize("backup_dir", ["", None])
def test_bad_backup_dir(backup_dir):
    with pytest.raises(ValueError, match="backup_dir must be a non-empty path"):
        BackupAndRestore(backup_dir)


def _crashed_backup(tmp_path):
    backup_dir = str(tmp_path / "backup")
    with pytest.raises(RuntimeError):
        _gan().fit(_data(), epochs=1, verbose=0,
                   callbacks=[BackupAndRestore(backup_dir, save_freq=2), Crash(3)])
    return backup_dir


def test_incomplete_backup_is_reported(tmp_path):
    from keras_aigc.callbacks import CorruptBackupError

    backup_dir = _crashed_backup(tmp_path)
    os.remove(os.path.join(backup_dir, "ckpt-2.weights.h5"))
    with pytest.raises(CorruptBackupError, match="ckpt-2.weights.h5.*backup is incomplete"):
        _gan().fit(_data(), epochs=1, verbose=0, callbacks=[BackupAndRestore(backup_dir)])


def test_backup_of_another_model_is_reported(tmp_path):
    backup_dir = _crashed_backup(tmp_path)  # dropout 0.3: 1 SeedGenerator state
    with pytest.raises(ValueError, match="holds 1 extra state variables but the model has 0"):
        _gan(dropout=0.0).fit(_data(), epochs=1, verbose=0,
                              callbacks=[BackupAndRestore(backup_dir)])


# --- Issue 11: corrupt, truncated or missing pieces at each write point.

@pytest.fixture(scope="module")
def two_backups(tmp_path_factory):
    """A crashed run's backup_dir: backup.json -> ckpt-3, backup.prev.json -> ckpt-2."""
    backup_dir = str(tmp_path_factory.mktemp("two") / "backup")
    with pytest.raises(RuntimeError):
        _gan().fit(_data(), epochs=1, verbose=0,
                   callbacks=[BackupAndRestore(backup_dir, save_freq=1), Crash(3)])
    assert sorted(os.listdir(backup_dir)) == [
        "backup.json", "backup.prev.json", "ckpt-2.state.npz", "ckpt-2.weights.h5",
        "ckpt-3.state.npz", "ckpt-3.weights.h5"]
    return backup_dir


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _garble(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xde\xad\xbe\xef" * 8)


DAMAGE = [
    # (id, damage, expected resume step or None for CorruptBackupError, message)
    ("weights truncated", [("ckpt-3.weights.h5", _truncate)], 2, None),
    ("state garbled", [("ckpt-3.state.npz", _garble)], 2, None),
    ("weights deleted", [("ckpt-3.weights.h5", os.remove)], 2, None),
    ("backup.json truncated", [("backup.json", _truncate)], 2, None),
    ("backup.json deleted", [("backup.json", os.remove)], 2, None),
    ("backup.prev.json garbled", [("backup.prev.json", _truncate)], 3, None),
    ("old files deleted", [("ckpt-2.weights.h5", os.remove)], 3, None),
    ("partial tmp file left", [("tmp-4.weights.h5", lambda p: open(p, "wb").write(b"x"))],
     3, None),
    ("both broken", [("ckpt-3.weights.h5", _truncate), ("ckpt-2.state.npz", _garble)], None,
     r"backup.json: ckpt-3.weights.h5 does not match its sha256.*backup.prev.json: "
     r"ckpt-2.state.npz does not match.*Delete backup_dir"),
    ("only checkpoint files", [("backup.json", os.remove), ("backup.prev.json", os.remove)],
     None, r"checkpoint files .*ckpt-2.* but no backup.json.*Delete backup_dir"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", DAMAGE, ids=lambda c: c[0])
def test_damaged_backup_falls_back_or_names_the_problem(two_backups, tmp_path, case):
    import shutil

    from keras_aigc.callbacks import CorruptBackupError

    _, damage, step, match = case
    backup_dir = str(tmp_path / "backup")
    shutil.copytree(two_backups, backup_dir)
    for name, fn in damage:
        fn(os.path.join(backup_dir, name))
    cb = BackupAndRestore(backup_dir, save_freq=1, delete_checkpoint=False)
    gan = _gan()
    if step is None:
        # 161f78a raised a raw parser error (or started from scratch); now a named error.
        with pytest.raises(CorruptBackupError, match=match):
            gan.fit(_data(), epochs=1, verbose=0, callbacks=[cb])
        return
    import warnings as _w

    with _w.catch_warnings(record=True) as caught:
        _w.simplefilter("always")
        gan.fit(_data(), epochs=1, verbose=0, callbacks=[cb])
    assert cb.restored["step"] == step
    fell_back = [w for w in caught if "previous good backup" in str(w.message)]
    assert bool(fell_back) == (step == 2)
    assert int(gan.g_optimizer.iterations.numpy()) == STEPS_PER_EPOCH  # resumed, not restarted

"""`model.fit` on a real 2-process MultiWorkerMirroredStrategy cluster on 127.0.0.1.

Each task runs `keras_aigc.cli.train.run` (the CLI's code path) in its own process with its
own TF_CONFIG; see cluster_harness.py. Adding a model family is one entry in MODELS (the
VAE goes there once it lands on main).
"""

import json
import os
import signal

import keras
import numpy as np
import pytest

import keras_aigc  # noqa: F401  (registers the classes for load_model)
from tests.distribute.cluster_harness import Cluster, read_steps, wait_for_steps

# Tiny models: the cluster tests measure correctness, not quality. Dropout is off so that
# one process and two workers compute the same function (dropout masks are per replica).
MODELS = {
    "dcgan": {"name": "DCGAN", "latent_dim": 8, "g_filters": [8, 4], "d_filters": [4, 8],
              "kernel_size": 3, "dropout": 0.0, "seed": 3},
    "vae": {"name": "VAE", "latent_dim": 4, "hidden_units": [16], "seed": 3},
}
DATA = {
    "dcgan": {"source": "digits", "batch_size": 16},
    "vae": {"source": "digits", "batch_size": 16, "scaling": "sigmoid", "binarize": "static"},
}
STEP_METRICS = {
    "dcgan": ("d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"),
    "vae": ("elbo", "reconstruction", "kl"),
}
TIMEOUT = 240  # seconds for a whole cluster run; TF start-up alone is ~8 s per process


def _config(model, strategy, epochs, steps_per_epoch, backup_freq="epoch", validation=True):
    return {
        "model": dict(MODELS[model]),
        "data": dict(DATA[model]),
        "training": {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "num_samples": 4,
                     "verbose": 2, "strategy": strategy, "backup_freq": backup_freq,
                     "validation": validation, "seed": 1},
    }


def _weights(path):
    return [v.numpy() for v in keras.models.load_model(path).weights]


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_workers_fit_write_on_chief_and_match_one_process(model, tmp_path):
    """2 epochs on 2 workers: both exit 0, the chief's run dir holds every artifact, no
    worker temp dir is left, and the weights equal a 1-process run on the same global
    batch, data and latents (sync BN + replica-exact latents + global-batch averaging)."""
    two = {"config": _config(model, "multi_worker", 2, 4),
           "run_dir": str(tmp_path / "two" / "run"), "step_log": str(tmp_path / "two_steps")}
    one = {"config": _config(model, "default", 2, 4),
           "run_dir": str(tmp_path / "one" / "run"), "step_log": str(tmp_path / "one_steps")}
    with Cluster(two, 2, str(tmp_path), tag="two") as cluster, \
            Cluster(one, 1, str(tmp_path), tag="one") as single:
        codes = cluster.wait(TIMEOUT)
        assert codes == [0, 0], cluster.tail()
        assert single.wait(TIMEOUT) == [0], single.tail()

    run_dir = two["run_dir"]
    for name in ("config.yaml", "data_info.json", "history.json", "model.keras",
                 "samples/epoch_0001.png", "samples/epoch_0002.png", "samples/final.png"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert os.listdir(os.path.join(run_dir, "logs")), "no TensorBoard logs on the chief"
    assert not os.path.exists(os.path.join(run_dir, "backup")), "backup not cleaned up"
    leftovers = [p for p in os.listdir(os.path.dirname(run_dir)) + os.listdir(run_dir)
                 if "workertemp" in p]
    assert leftovers == []
    with open(os.path.join(run_dir, "data_info.json")) as f:
        info = json.load(f)
    assert info["num_replicas"] == 2 and info["global_batch_size"] == 16

    # Both workers logged the same, globally aggregated step metrics, equal to 1 process.
    w0, w1 = (read_steps(two["step_log"] + f".task{i}") for i in (0, 1))
    ref = read_steps(one["step_log"] + ".task0")
    assert [r["step"] for r in w0] == [r["step"] for r in ref] == list(range(1, 9))
    for a, b, c in zip(w0, w1, ref, strict=True):
        for key in STEP_METRICS[model]:
            assert a[key] == b[key]
            np.testing.assert_allclose(a[key], c[key], rtol=1e-5, atol=1e-6)

    with open(os.path.join(run_dir, "history.json")) as f:
        hist = json.load(f)
    first_metric = STEP_METRICS[model][0]
    assert len(hist[first_metric]) == 2 and len(hist["val_" + first_metric]) == 2
    for a, b in zip(_weights(os.path.join(run_dir, "model.keras")),
                    _weights(os.path.join(one["run_dir"], "model.keras")), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sigkill_one_worker_then_resume_at_saved_step(tmp_path):
    """SIGKILL worker 1 mid-epoch, stop the cluster, restart it with the same command:
    training resumes from the last step-level backup, finishes the requested steps, and
    no step is lost or repeated beyond the backup interval."""
    save_freq, epochs, spe = 2, 2, 6
    job = {"config": _config("dcgan", "multi_worker", epochs, spe, backup_freq=save_freq,
                             validation=False),
           "run_dir": str(tmp_path / "run"), "step_log": str(tmp_path / "steps"),
           "step_sleep": 0.5}
    chief_log = job["step_log"] + ".task0"
    with Cluster(job, 2, str(tmp_path), tag="first") as cluster:
        wait_for_steps(chief_log, 3, cluster.procs, TIMEOUT)
        cluster.kill(1, signal.SIGKILL)
        # A cluster manager restarts the whole job when a task dies.
        cluster.kill(0, signal.SIGKILL)
    first = read_steps(chief_log)
    killed_at = first[-1]["step"]
    assert killed_at < epochs * spe, "the run finished before the kill"
    with open(os.path.join(job["run_dir"], "backup", "backup.json")) as f:
        backup = json.load(f)
    assert backup["step"] % save_freq == 0 and 0 < backup["step"] <= killed_at
    assert killed_at - backup["step"] < save_freq

    job["step_sleep"] = 0
    with Cluster(job, 2, str(tmp_path), tag="second") as cluster:
        assert cluster.wait(TIMEOUT) == [0, 0], cluster.tail()
    second = read_steps(chief_log)[len(first):]
    # The restart trains exactly the steps after the backup, up to the requested total.
    assert [r["step"] for r in second] == list(range(backup["step"] + 1, epochs * spe + 1))
    repeated = sorted({r["step"] for r in first} & {r["step"] for r in second})
    # The kill lands in the sleep before step 4, so step 3 (after the backup at 2) is
    # trained twice: once before the kill, once after the restart.
    assert repeated == [killed_at] and len(repeated) < save_freq
    # Repeated steps recompute the same losses: optimizers, latent stream (keyed on the
    # restored g_optimizer.iterations) and the data position were all restored.
    by_step = {r["step"]: r for r in first}
    for r in second:
        if r["step"] in by_step:
            for key in ("step_d_loss", "step_g_loss"):
                np.testing.assert_allclose(r[key], by_step[r["step"]][key], rtol=1e-4)

    model = keras.models.load_model(os.path.join(job["run_dir"], "model.keras"))
    assert int(model.g_optimizer.iterations.numpy()) == epochs * spe
    images = model.generate(3, seed=0)
    assert images.shape == (3, 32, 32, 1) and np.all(np.abs(images) <= 1.0)
    with open(os.path.join(job["run_dir"], "history.json")) as f:
        assert len(json.load(f)["g_loss"]) == epochs - backup["epoch"]

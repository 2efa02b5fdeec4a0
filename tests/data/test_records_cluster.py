"""Sharding of `records:` on a real 2-worker MultiWorkerMirroredStrategy cluster."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.data.records_fixture import random_images, write_records
from tests.distribute.cluster_harness import base_env, free_ports, tf_config

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "records_shard_worker.py")


def _records_and_shard_labels(tmp_path):
    import tensorflow as tf

    records = str(tmp_path / "records")
    n = 40
    meta = write_records(records, random_images(n, size=8), np.arange(n), shards=(4, 1, 1))
    shard_labels = []
    for shard in meta["splits"]["train"]["shards"]:
        labels = set()
        for raw in tf.data.TFRecordDataset(os.path.join(records, shard["file"])):
            ex = tf.train.Example.FromString(raw.numpy())
            labels.add(int(ex.features.feature["label"].int64_list.value[0]))
        shard_labels.append(frozenset(labels))
    assert len(shard_labels) == 4 and all(shard_labels)
    return records, shard_labels


def _run_cluster(tmp_path, records, *mode):
    out = str(tmp_path / "seen")
    ports = free_ports(2)
    procs = []
    for i in range(2):
        env = base_env()
        env["TF_CONFIG"] = tf_config(ports, i)
        log = open(str(tmp_path / f"task{i}.log"), "w")
        procs.append(subprocess.Popen([sys.executable, WORKER, records, out, str(i), *mode],
                                      env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    try:
        codes = [p.wait(timeout=1800) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
    logs = "\n".join(open(str(tmp_path / f"task{i}.log")).read()[-2000:] for i in range(2))
    assert codes == [0, 0], logs
    return [json.load(open(f"{out}.task{i}")) for i in range(2)]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_each_worker_reads_its_own_shards_and_together_every_record_once(tmp_path):
    import tensorflow as tf

    records, shard_labels = _records_and_shard_labels(tmp_path)
    results = _run_cluster(tmp_path, records)
    file_policy = int(tf.data.experimental.AutoShardPolicy.FILE)
    assert [r["policy"] for r in results] == [file_policy, file_policy]
    seen = [r["labels"] for r in results]
    assert all(seen), seen
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(set().union(*shard_labels))  # each record once
    for labels in seen:  # every worker read whole shards
        mine = set(labels)
        assert mine == set().union(*[s for s in shard_labels if s <= mine])


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_endless_stream_each_worker_its_own_shards_every_record_once_per_pass(tmp_path):
    """`repeat=True`: the loader shards the files itself (worker i reads shards i, i+2)."""
    import tensorflow as tf

    records, shard_labels = _records_and_shard_labels(tmp_path)
    results = _run_cluster(tmp_path, records, "repeat")
    off = int(tf.data.experimental.AutoShardPolicy.OFF)
    assert [r["policy"] for r in results] == [off, off]
    passes = []
    for index, r in enumerate(results):
        share, labels = r["share"], r["labels"]
        mine = set().union(*shard_labels[index::2])
        assert share == len(mine) and len(labels) >= 2 * share
        first, second = labels[:share], labels[share:2 * share]
        assert sorted(first) == sorted(second) == sorted(mine)  # each record once per pass
        assert first != second  # a new order each pass
        passes.append(set(first))
    assert not passes[0] & passes[1]
    assert passes[0] | passes[1] == set().union(*shard_labels)


def _train_job(tmp_path, records, tag, sleep=0.0):
    from tests.distribute.test_multi_worker import MODELS

    config = {
        "model": dict(MODELS["dcgan"]),
        "data": {"source": f"records:{records}", "batch_size": 8},
        "training": {"epochs": 3, "num_samples": 4, "verbose": 2, "strategy": "multi_worker",
                     "backup_freq": 2, "validation": False, "seed": 1, "fid_features": "off"},
    }
    return {"config": config, "run_dir": str(tmp_path / tag / "run"),
            "step_log": str(tmp_path / f"{tag}_steps"), "step_sleep": sleep}


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_two_workers_killed_mid_epoch_resume_every_later_step_exactly(tmp_path):
    """`keras-aigc train` on records: with a backup (the endless stream) on 2 workers:
    SIGKILL both tasks in epoch 2, restart; every step after the backup computes the losses
    of an uninterrupted 2-worker run (each worker replayed its stream to the backup)."""
    import keras

    from tests.distribute.cluster_harness import Cluster, read_steps, wait_for_steps

    records = str(tmp_path / "records")
    write_records(records, random_images(60, size=16, channels=1), np.zeros(60, int),
                  shards=(4, 1, 1))  # 36 train images, global batch 8: 4 steps per epoch
    full = _train_job(tmp_path, records, "full")
    with Cluster(full, 2, str(tmp_path), tag="full") as cluster:
        assert cluster.wait(600) == [0, 0], cluster.tail()
    reference = {r["step"]: r for r in read_steps(full["step_log"] + ".task0")}
    assert sorted(reference) == list(range(1, 13))

    job = _train_job(tmp_path, records, "killed", sleep=0.5)
    chief_log = job["step_log"] + ".task0"
    with Cluster(job, 2, str(tmp_path), tag="first") as cluster:
        wait_for_steps(chief_log, 7, cluster.procs, 600)
        cluster.kill(1)
        cluster.kill(0)
    backup_dir = os.path.join(job["run_dir"], "backup")
    with open(os.path.join(backup_dir, "backup.json")) as f:
        backup = json.load(f)
    # MultiDeviceIterators cannot be checkpointed: the backup says the stream is endless
    # and the restart replays it up to the backup.
    assert backup["endless"] and "iterator_state" not in backup
    assert (backup["step"], backup["epoch"], backup["batch"]) == (6, 1, 2)
    assert not [f for f in os.listdir(backup_dir) if f.startswith("iter-")]
    first = len(read_steps(chief_log))

    job["step_sleep"] = 0.0
    with Cluster(job, 2, str(tmp_path), tag="second") as cluster:
        assert cluster.wait(600) == [0, 0], cluster.tail()
    resumed = read_steps(chief_log)[first:]
    assert [r["step"] for r in resumed] == list(range(7, 13))
    for r in resumed:
        for key in ("step_d_loss", "step_g_loss"):
            np.testing.assert_allclose(r[key], reference[r["step"]][key], rtol=1e-4,
                                       atol=1e-6)
    a = keras.models.load_model(os.path.join(full["run_dir"], "model.keras")).weights
    b = keras.models.load_model(os.path.join(job["run_dir"], "model.keras")).weights
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4, atol=1e-6)

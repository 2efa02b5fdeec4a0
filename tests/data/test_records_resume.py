"""Step-exact resume of a streamed `records:` run killed mid-epoch (real SIGKILL)."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.data.records_fixture import random_images, write_records

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resume_worker.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(job, tmp_path, tag, kill_after=None, timeout=1500):
    path = str(tmp_path / f"{tag}.json")
    with open(path, "w") as f:
        json.dump(job, f)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_CONFIG", None)
    with open(str(tmp_path / f"{tag}.out"), "w") as out:
        proc = subprocess.Popen([sys.executable, WORKER, path], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        if kill_after is None:
            assert proc.wait(timeout=timeout) == 0, open(str(tmp_path / f"{tag}.out")).read()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(job["log"]) and len(_lines(job["log"])) >= kill_after:
                break
            assert proc.poll() is None, open(str(tmp_path / f"{tag}.out")).read()
            time.sleep(0.05)
        else:
            raise AssertionError(f"no step {kill_after} within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().endswith("}")]


# Generous bounds: three fresh TensorFlow processes on a possibly loaded machine.
@pytest.mark.slow
@pytest.mark.timeout(4800)
def test_killed_run_resumes_with_the_next_batch(tmp_path):
    records = str(tmp_path / "records")
    write_records(records, random_images(100), np.zeros(100, int), shards=(3, 1, 1))
    full = dict(records=records, backup=str(tmp_path / "b_full"), log=str(tmp_path / "full"),
                sleep=0.0)
    _run(full, tmp_path, "full")
    reference = [r["fp"] for r in _lines(full["log"])]
    assert len(reference) == 15  # 60 train records, batch 4

    job = dict(records=records, backup=str(tmp_path / "b"), log=str(tmp_path / "killed"),
               sleep=0.5)
    _run(job, tmp_path, "killed", kill_after=5)
    before = _lines(job["log"])
    meta = json.load(open(os.path.join(job["backup"], "backup.json")))
    assert meta["iterator_state"] and meta["step"] >= 5
    job.update(sleep=0.0, log=str(tmp_path / "resumed"))
    _run(job, tmp_path, "resumed")
    after = _lines(job["log"])
    # The first resumed step is the step after the backup, with the batch the
    # uninterrupted run trained on at that step; so is every later one.
    assert after[0]["step"] == meta["step"] + 1
    assert [r["fp"] for r in after] == reference[meta["step"]:]
    assert [r["fp"] for r in before[:meta["step"]]] == reference[:meta["step"]]


@pytest.fixture(scope="module")
def endless(tmp_path_factory):
    """Records (60 train, batch 4: 15 steps per epoch) and an uninterrupted 3-epoch run
    on the endless stream."""
    tmp = tmp_path_factory.mktemp("endless")
    records = str(tmp / "records")
    write_records(records, random_images(100), np.zeros(100, int), shards=(3, 1, 1))
    full = dict(records=records, backup=str(tmp / "b_full"), log=str(tmp / "full"), sleep=0.0,
                epochs=3, repeat=True)
    _run(full, tmp, "full")
    reference = _lines(full["log"])
    assert [(r["epoch"], r["batch"]) for r in reference] == [
        (e, b) for e in range(3) for b in range(15)]
    return records, reference


# An epoch-end backup of an endless stream (the resumed epoch starts on the restored
# iterator) and a mid-epoch one in a later epoch (no-op steps keep the epoch's length).
@pytest.mark.slow
@pytest.mark.timeout(4800)
@pytest.mark.parametrize("save_freq,kill_after", [("epoch", 18), (1, 22)])
def test_killed_endless_run_resumes_every_later_batch(endless, tmp_path, save_freq,
                                                      kill_after):
    records, reference = endless
    job = dict(records=records, backup=str(tmp_path / "b"), log=str(tmp_path / "killed"),
               sleep=0.4, epochs=3, repeat=True, save_freq=save_freq)
    _run(job, tmp_path, "killed", kill_after=kill_after)
    meta = json.load(open(os.path.join(job["backup"], "backup.json")))
    assert meta["iterator_state"] and meta["step"] >= (15 if save_freq == "epoch" else 22)
    if save_freq == "epoch":
        assert (meta["epoch"], meta["batch"]) == (1, 0)
    else:
        assert meta["epoch"] == 1 and meta["batch"] == meta["step"] - 15 > 0
    job.update(sleep=0.0, log=str(tmp_path / "resumed"))
    _run(job, tmp_path, "resumed")
    after = _lines(job["log"])
    # Same steps, epochs, batch indices, batches and weights as the uninterrupted run.
    assert after == reference[meta["step"]:]

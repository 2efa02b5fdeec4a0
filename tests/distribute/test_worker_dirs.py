"""Chief writes to the real path; other tasks to a temp sibling that gets removed."""

import json
import os

import pytest

from keras_aigc.distribute import chief_or_temp_dir, cleanup_temp_dir


def _set_task(monkeypatch, task_type, index, jobs=("worker",)):
    cluster = {j: ["127.0.0.1:1", "127.0.0.1:2"] for j in jobs}
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}}))


def test_single_process_is_chief(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    path = str(tmp_path / "run")
    assert chief_or_temp_dir(path) == path
    cleanup_temp_dir(path)  # never removes the chief's directory
    os.makedirs(path)
    cleanup_temp_dir(path)
    assert os.path.isdir(path)


@pytest.mark.parametrize("task_type, index, jobs, chief", [
    ("worker", 0, ("worker",), True),
    ("worker", 1, ("worker",), False),
    ("chief", 0, ("chief", "worker"), True),
    ("worker", 0, ("chief", "worker"), False),
])
def test_temp_dir_per_task(monkeypatch, tmp_path, task_type, index, jobs, chief):
    _set_task(monkeypatch, task_type, index, jobs)
    path = str(tmp_path / "run")
    got = chief_or_temp_dir(path)
    if chief:
        assert got == path
        return
    assert got == str(tmp_path / f".run.workertemp_{task_type}_{index}")
    os.makedirs(os.path.join(got, "samples"))
    cleanup_temp_dir(path)
    assert not os.path.exists(got)

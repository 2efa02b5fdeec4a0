import json

import pytest

from keras_aigc.distribute import is_chief, task_from_tf_config


def _env(task_type, index, chief=False):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    if chief:
        cluster["chief"] = ["127.0.0.1:3"]
    return {"TF_CONFIG": json.dumps({"cluster": cluster,
                                     "task": {"type": task_type, "index": index}})}


@pytest.mark.parametrize("env,expected", [
    ({}, True),
    (_env("worker", 0), True),
    (_env("worker", 1), False),
    (_env("worker", 0, chief=True), False),
    (_env("chief", 0, chief=True), True),
    (_env("ps", 0), False),
])
def test_is_chief(monkeypatch, env, expected):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert is_chief() is expected


def test_malformed_tf_config():
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        task_from_tf_config({"TF_CONFIG": "{not json"})

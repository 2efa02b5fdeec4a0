"""get_strategy: every spec, the auto rules, and the errors for bad specs and clusters."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from keras_aigc.distribute import strategy as strategy_lib
from keras_aigc.distribute.strategy import get_strategy, parse_spec, parse_tf_config
from tests.distribute.cluster_harness import REPO, base_env, free_ports, tf_config


@pytest.fixture
def no_cluster_env(monkeypatch):
    for key in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize("spec, expected", [
    ("auto", ("auto", None)),
    ("default", ("default", None)),
    ("one_device", ("one_device", None)),
    ("one_device:/cpu:1", ("one_device", "/cpu:1")),
    ("mirrored:/cpu:0,/cpu:1", ("mirrored", "/cpu:0,/cpu:1")),
    ("Multi-Worker", ("multi_worker", None)),
    ("tpu:grpc://10.0.0.2:8470", ("tpu", "grpc://10.0.0.2:8470")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec, match", [
    ("horovod", r"Unrecognized strategy='horovod'.*Supported strategies are: \['auto'"),
    ("", "Unrecognized strategy=''"),
    (3, "Unrecognized strategy=3"),
    ("mirrored:", "empty argument"),
    ("default:/cpu:0", "'default' takes no argument"),
    ("multi_worker:4", "'multi_worker' takes no argument"),
])
def test_parse_spec_rejects(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_default_one_device_and_mirrored(no_cluster_env):
    assert get_strategy("default") is tf.distribute.get_strategy()
    one = get_strategy("one_device:cpu:1")
    assert isinstance(one, tf.distribute.OneDeviceStrategy)
    assert one.extended.worker_devices[0].endswith("CPU:1")
    mirrored = get_strategy("mirrored:/cpu:0,/cpu:1")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2
    # No argument: all GPUs, else all logical CPUs (two, from tests/conftest.py); one
    # instance per device set and process.
    assert get_strategy("mirrored") is mirrored
    assert get_strategy("mirrored:CPU:1,/job:localhost/replica:0/task:0/device:CPU:0") is (
        mirrored)


def test_unknown_device_lists_the_real_ones(no_cluster_env):
    with pytest.raises(ValueError, match=r"unknown device\(s\) \['/cpu:7'\].*CPU:0"):
        get_strategy("one_device:/cpu:7")
    with pytest.raises(ValueError, match=r"unknown device\(s\) \['/gpu:0'\]"):
        get_strategy("mirrored:/cpu:0,/gpu:0")


def test_auto_rules(no_cluster_env, monkeypatch):
    # This machine: no TPU, no GPU, no cluster -> default.
    assert strategy_lib.resolve_auto() == "default"
    assert get_strategy("auto") is tf.distribute.get_strategy()
    two = json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                      "task": {"type": "worker", "index": 0}})
    assert strategy_lib.resolve_auto({"TF_CONFIG": two}) == "multi_worker"
    one = json.dumps({"cluster": {"worker": ["127.0.0.1:1"]},
                      "task": {"type": "worker", "index": 0}})
    assert strategy_lib.resolve_auto({"TF_CONFIG": one}) == "default"
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["g0", "g1"] if kind == "GPU" else [])
    assert strategy_lib.resolve_auto({}) == "mirrored"
    monkeypatch.setenv("TPU_NAME", "my-tpu")
    assert strategy_lib.resolve_auto({"TF_CONFIG": two}) == "tpu"


@pytest.mark.parametrize("raw, match", [
    ("{not json", "TF_CONFIG is not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', r"TF_CONFIG\['cluster'\] must be"),
    ('{"cluster": {"gpu": ["a:1"]}, "task": {"type": "gpu", "index": 0}}',
     "unknown job 'gpu'"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "'localhost', which is not a 'host:port'"),
    ('{"cluster": {"worker": ["a:1"]}}', r"TF_CONFIG\['task'\] must be"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "'chief' is not a job of the cluster"),
    ('{"cluster": {"worker": ["a:1", "a:2"]}, "task": {"type": "worker", "index": 2}}',
     "index'\\]=2 is out of range for job 'worker' with 2 task"),
])
def test_malformed_tf_config(raw, match, monkeypatch):
    with pytest.raises(ValueError, match=match):
        parse_tf_config({"TF_CONFIG": raw})
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ValueError, match=match):
        get_strategy("multi_worker")


def test_multi_worker_needs_a_cluster(no_cluster_env):
    with pytest.raises(ValueError, match="needs TF_CONFIG .* TF_CONFIG is not set"):
        get_strategy("multi_worker")


@pytest.mark.parametrize("timeout", [0, -1, "10", True])
def test_bad_timeout(timeout):
    with pytest.raises(ValueError, match=f"timeout must be a positive number.*{timeout!r}"):
        get_strategy("default", timeout=timeout)


def test_tpu_unreachable_is_a_clear_error(no_cluster_env):
    # No TPU here: a clear error before any resolver (which would query the GCE
    # metadata server over the network) is created.
    with pytest.raises(ValueError, match="strategy='tpu': no TPU on this machine .*'tpu:NAME'"):
        get_strategy("tpu")


def test_describe_and_is_multi_worker(no_cluster_env):
    s = get_strategy("mirrored:/cpu:0,/cpu:1")
    assert strategy_lib.describe(s) == "MirroredStrategy with 2 replica(s)"
    assert not strategy_lib.is_multi_worker(s)


@pytest.mark.slow
def test_peer_that_never_comes_up_times_out(tmp_path):
    """Each task of a 2-task cluster started alone (task 0 is the coordination leader,
    task 1 is not): a TimeoutError naming the cluster after the bounded wait, then the
    process exits by itself."""
    code = ("from keras_aigc.distribute import get_strategy\n"
            "try:\n"
            "    get_strategy('multi_worker', timeout=5)\n"
            "except TimeoutError as e:\n"
            "    print('TIMEOUT:', e, flush=True)\n")
    procs = []
    try:
        for index in (0, 1):
            env = base_env()
            env["TF_CONFIG"] = tf_config(free_ports(2), index)
            log = open(tmp_path / f"task{index}.log", "w+")
            procs.append((subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO,
                                           stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True), log))
        for proc, log in procs:
            proc.wait(timeout=150)
            log.seek(0)
            out = log.read()
            assert "TIMEOUT: strategy='multi_worker': not all peers of the cluster" in out, (
                out[-3000:])
            assert "within timeout=5 s" in out
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=30)
            log.close()


# ---------------------------------------------------------------- TPU readiness
# No TPU here. What TPUStrategy needs from our train_step we check on CPU: XLA must
# compile the whole step (TPUs run only XLA programs), with no host callbacks in it,
# and several steps per call (`steps_per_execution`) must work.
HOST_OPS = {"PyFunc", "EagerPyFunc", "NumpyFunction", "PrintV2", "Print"}


@pytest.mark.slow
def test_gan_train_step_has_no_host_ops_and_compiles_with_xla():
    import keras
    import numpy as np

    import keras_aigc as ka

    keras.utils.set_random_seed(0)
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 2),
                          d_filters=(2,), kernel_size=3)
    gan.compile(jit_compile=True, steps_per_execution=2)
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4, drop_remainder=True)
    graph = tf.function(gan.train_step).get_concrete_function(
        tf.TensorSpec((4, 8, 8, 1), tf.float32)).graph
    ops = {op.type for op in graph.get_operations()}
    assert not ops & HOST_OPS
    gan.fit(ds, epochs=1, verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 4  # 2 calls x 2 steps, under XLA

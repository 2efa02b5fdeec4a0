"""Shared test set-up: two logical CPU devices (before TF initialises) and MNIST's path."""

import os

import pytest
import tensorflow as tf

# Two logical CPUs let every test run a real 2-replica MirroredStrategy on this machine.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.environ.get("KERAS_AIGC_MNIST",
                       os.path.join(ROOT, "..", "shared", "data", "mnist.npz"))
# The standard FID network's weights and reference features (never copied into the repo).
FID_WEIGHTS = os.environ.get("KERAS_AIGC_FID_WEIGHTS",
                             os.path.join(ROOT, "..", "shared", "data", "fid_inception",
                                          "weights.npz"))


@pytest.fixture(scope="session")
def mnist_path():
    """Path of real MNIST (keras.datasets layout). CI must have it: there it fails, not skips."""
    path = os.path.abspath(MNIST)
    if not os.path.isfile(path):
        message = (f"real MNIST not found at {path}; set KERAS_AIGC_MNIST to a "
                   "keras.datasets-layout mnist.npz")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _shared_file(path, what, variable):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        message = f"{what} not found at {path}; set {variable}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fid_weights_path():
    """Path of the FID Inception weights.npz; reference_features.npz sits next to it."""
    return _shared_file(FID_WEIGHTS, "FID Inception weights", "KERAS_AIGC_FID_WEIGHTS")


@pytest.fixture(scope="session")
def two_replicas():
    from tests.harness import two_replica_strategy

    return two_replica_strategy()

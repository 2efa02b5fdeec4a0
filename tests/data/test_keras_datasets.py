"""The `mnist` / `fashion_mnist` sources: environment variable, Keras cache, tfds, download."""

import os

import keras
import numpy as np
import pytest

from keras_aigc.data import sources


def _fake_npz(path, n=6):
    rng = np.random.default_rng(0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
             y_train=np.arange(n) % 10, x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
             y_test=np.array([1, 2]))
    return path


def test_environment_variable_first(tmp_path, monkeypatch, mnist_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("KERAS_AIGC_MNIST", mnist_path)
    raw = sources.read_source("mnist")
    expected = sources.read_source(f"npz:{mnist_path}")
    np.testing.assert_array_equal(raw.splits["test"][0], expected.splits["test"][0])
    assert raw.splits["train"][0].shape == (60000, 28, 28, 1)


def test_bad_environment_variable_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_AIGC_MNIST", str(tmp_path / "nope.npz"))
    with pytest.raises(FileNotFoundError, match="KERAS_AIGC_MNIST=.*nope.npz' is not a file"):
        sources.read_source("mnist")


def test_keras_cache_second(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_AIGC_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    _fake_npz(str(tmp_path / "datasets" / "mnist.npz"))
    raw = sources.read_source("mnist")
    assert raw.splits["train"][0].shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(raw.splits["test"][1], [1, 2])


def test_offline_without_data_names_the_three_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_AIGC_FASHION_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(sources, "_tfds_prepared", lambda name, data_dir=None: False)

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError) as e:
        sources.read_source("fashion_mnist")
    message = str(e.value)
    for way in ("KERAS_AIGC_FASHION_MNIST=", os.path.join(str(tmp_path), "datasets"),
                "tfds:fashion_mnist", "no network"):
        assert way in message, (way, message)


def test_keras_dataset_sources_take_no_argument():
    with pytest.raises(ValueError, match="the mnist source takes no argument"):
        sources.parse_spec("mnist:x")

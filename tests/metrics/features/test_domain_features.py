import json
import os

import numpy as np
import pytest

from keras_aigc import data
from keras_aigc.metrics.features import DomainFeatures, default_directory, train_domain_classifier
from keras_aigc.metrics.features import domain_features as df


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("clf"))
    extractor, record = train_domain_classifier("digits", directory=directory, epochs=3,
                                                batch_size=64, verbose=0)
    return directory, extractor, record


def test_training_saves_model_and_test_accuracy(digits_classifier):
    directory, extractor, record = digits_classifier
    with open(os.path.join(directory, df.INFO_FILE)) as f:
        saved = json.load(f)
    assert saved["test_accuracy"] == record["test_accuracy"]
    assert saved["test_examples"] == data.info("digits", "test").num_examples
    # 3 epochs on 1.4k digit images: far above the 10% of chance.
    assert record["test_accuracy"] > 0.5


def test_reloaded_classifier_is_reused_with_identical_outputs(digits_classifier):
    directory, extractor, _ = digits_classifier
    again = DomainFeatures.load(directory)
    x, _, _ = data.load_arrays("digits", "test")
    np.testing.assert_allclose(again(x, value_range=(0, 255)),
                               extractor(x, value_range=(0, 255)), rtol=1e-5, atol=1e-5)
    assert again.info["test_accuracy"] == extractor.info["test_accuracy"]


def test_value_range_rescaling_and_probabilities(digits_classifier):
    _, extractor, record = digits_classifier
    x, y, _ = data.load_arrays("digits", "test")
    f255 = extractor(x, value_range=(0, 255))
    f_tanh = extractor(x / 127.5 - 1.0, value_range=(-1, 1))
    np.testing.assert_allclose(f_tanh, f255, rtol=1e-4, atol=1e-4)
    assert f255.shape == (len(x), extractor.dim)
    probs = extractor.probabilities(x, value_range=(0, 255))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    # The accuracy recorded next to the model is the accuracy of these predictions.
    assert np.mean(probs.argmax(1) == y) == pytest.approx(record["test_accuracy"], abs=1e-6)


def test_bad_inputs(digits_classifier, tmp_path):
    _, extractor, _ = digits_classifier
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32, 1\).*got \(2, 28, 28, 1\)"):
        extractor(np.zeros((2, 28, 28, 1)))
    with pytest.raises(FileNotFoundError, match="keras-aigc train-features"):
        DomainFeatures.load(str(tmp_path))
    with pytest.raises(ValueError, match="Unknown data arguments"):
        train_domain_classifier("digits", directory=str(tmp_path), batch_szie=3)


def test_cache_directory_depends_on_source_and_splits(monkeypatch, tmp_path):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path))
    a = default_directory("digits")
    assert a.startswith(str(tmp_path))
    assert a != default_directory("digits", split_seed=1)
    assert a == default_directory("digits")


@pytest.mark.slow
@pytest.mark.mnist
def test_mnist_domain_classifier_reaches_98_percent(tmp_path, mnist_path):
    _, record = train_domain_classifier(f"npz:{mnist_path}", directory=str(tmp_path), verbose=0)
    assert record["test_examples"] == 10000
    assert record["test_accuracy"] >= 0.98

import keras
import numpy as np
import pytest

from keras_aigc.metrics.features import DomainClassifier


def test_config_round_trip_and_keras_save_load(tmp_path):
    clf = DomainClassifier((12, 12, 1), num_classes=3, filters=(4, 8), feature_dim=16,
                           dropout=0.1, value_range=(0, 1))
    config = clf.get_config()
    for key in ("image_shape", "num_classes", "filters", "feature_dim", "dropout",
                "value_range"):
        assert key in config
    clone = DomainClassifier.from_config(config)
    assert clone.get_config() == config
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    back = keras.models.load_model(path)
    x = np.random.default_rng(0).uniform(size=(5, 12, 12, 1)).astype(np.float32)
    np.testing.assert_allclose(back(x), clf(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.features(x), clf.features(x), rtol=1e-6, atol=1e-6)
    assert clf.features(x).shape == (5, 16)
    assert clf(x).shape == (5, 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        DomainClassifier((28, 28), num_classes=10)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        DomainClassifier((28, 28, 1), num_classes=1)

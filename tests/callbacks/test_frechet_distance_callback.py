import numpy as np
import pytest

from keras_aigc import data, models
from keras_aigc.callbacks import FrechetDistanceCallback
from keras_aigc.metrics import FeatureStatistics, frechet_distance_from_features
from keras_aigc.metrics.features import DomainClassifier, DomainFeatures


def test_logs_fid_each_epoch_and_it_equals_the_offline_value():
    # An untrained classifier is still a fixed feature map: enough to check the plumbing.
    extractor = DomainFeatures(DomainClassifier((32, 32, 1), num_classes=10, filters=(4,),
                                                feature_dim=8))
    real, _, _ = data.load_arrays("digits", "test")
    gan = models.DCGAN(image_shape=(32, 32, 1), latent_dim=8, g_filters=(16, 8, 4),
                       d_filters=(4,), kernel_size=3, seed=1)
    gan.compile()
    cb = FrechetDistanceCallback(extractor, real, num_samples=64, batch_size=32, seed=3)
    history = gan.fit(data.load("digits", batch_size=32), epochs=2, steps_per_epoch=2,
                      callbacks=[cb], verbose=0)
    assert len(history.history["fid"]) == 2
    assert [e for e, _ in cb.history] == [1, 2]
    # Recomputing by hand from the same seeds gives the logged value.
    fakes = np.concatenate([gan.generate(32, seed=3), gan.generate(32, seed=4)])
    expected = frechet_distance_from_features(extractor(real, value_range=(0, 255)),
                                              extractor(fakes, value_range=(-1, 1)))
    assert history.history["fid"][-1] == pytest.approx(expected, rel=1e-6)
    assert isinstance(cb.real_statistics(), FeatureStatistics)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_samples must be an integer >= 2, got "
                                         "num_samples=1"):
        FrechetDistanceCallback(lambda x, value_range: x, np.zeros((4, 8, 8, 1)), num_samples=1)
    with pytest.raises(ValueError, match="feature_extractor must be callable"):
        FrechetDistanceCallback("not callable", np.zeros((4, 8, 8, 1)))


def test_default_extractor_is_the_fid_network_and_fails_clearly_without_weights(monkeypatch):
    monkeypatch.delenv("KERAS_AIGC_FID_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="KERAS_AIGC_FID_WEIGHTS"):
        FrechetDistanceCallback(None, np.zeros((4, 8, 8, 1), np.uint8))

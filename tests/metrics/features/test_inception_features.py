import numpy as np
import pytest

from keras_aigc.metrics.features import InceptionFeatures
from keras_aigc.metrics.features import inception_features as inc


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No Keras cache and no env var: nothing to load the weights from."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    return tmp_path


def test_weights_unavailable_offline_says_how_to_provide_them(offline):
    with pytest.raises(FileNotFoundError) as e:
        InceptionFeatures()
    msg = str(e.value)
    assert "not available offline" in msg
    assert "weights=PATH" in msg
    assert inc.WEIGHTS_ENV in msg
    assert inc.WEIGHTS_URL in msg
    assert str(offline / "keras_home" / "models" / inc.WEIGHTS_FILE) in msg


def test_missing_weights_path_is_named(offline, monkeypatch):
    with pytest.raises(FileNotFoundError, match="weights='/no/such.h5'"):
        InceptionFeatures(weights="/no/such.h5")
    monkeypatch.setenv(inc.WEIGHTS_ENV, "/no/env.h5")
    with pytest.raises(FileNotFoundError, match=f"{inc.WEIGHTS_ENV}='/no/env.h5'"):
        InceptionFeatures()


def test_wrong_weights_file_is_a_clear_error(offline):
    bad = offline / "bad.weights.h5"
    bad.write_bytes(b"not an h5 file")
    with pytest.raises(ValueError, match="Could not load InceptionV3 weights"):
        InceptionFeatures(weights=str(bad))


@pytest.mark.slow
def test_weights_file_gives_2048_pool_features_and_tiles_grayscale(offline):
    import keras

    # Any weights of the right architecture stand in for the ImageNet file (no network).
    keras.utils.set_random_seed(0)
    path = str(offline / "inception_notop.weights.h5")
    keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None,
                                   input_shape=(299, 299, 3)).save_weights(path)
    extractor = InceptionFeatures(weights=path, batch_size=2)
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, size=(3, 28, 28, 1)).astype(np.float32)
    pre = np.asarray(extractor.preprocess(gray, value_range=(0, 255)))
    assert pre.shape == (3, 299, 299, 3)
    assert pre.min() >= -1.0 and pre.max() <= 1.0
    feats = extractor(gray, value_range=(0, 255))
    assert feats.shape == (3, 2048) and feats.dtype == np.float32
    rgb = np.repeat(gray / 127.5 - 1.0, 3, axis=-1)
    np.testing.assert_allclose(extractor(rgb, value_range=(-1, 1)), feats, rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        extractor(np.zeros((1, 8, 8, 2)))

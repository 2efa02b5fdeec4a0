import keras
import numpy as np
import pytest

from keras_aigc.models.vae import LikelihoodMean


def test_means_per_likelihood():
    params = np.array([[[[-2.0, 0.4], [0.5, 9.0]]]], np.float32)  # (1, 1, 2, 2): C=1, p=2
    sig = 1 / (1 + np.exp(-params[..., :1]))
    np.testing.assert_allclose(np.asarray(LikelihoodMean("bernoulli", 1)(params[..., :1])),
                               sig, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(LikelihoodMean("gaussian", 1)(params)),
                               params[..., :1])
    np.testing.assert_allclose(np.asarray(LikelihoodMean("logistic", 1)(params)),
                               [[[[0.0], [0.5]]]])
    out = LikelihoodMean("gaussian", 1)(params)
    assert out.dtype == "float32" and tuple(out.shape) == (1, 1, 2, 1)


def test_serializes():
    layer = LikelihoodMean("logistic", 3)
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert again.get_config() == layer.get_config()


def test_bad_likelihood():
    with pytest.raises(ValueError, match="likelihood='poisson'"):
        LikelihoodMean("poisson", 1)

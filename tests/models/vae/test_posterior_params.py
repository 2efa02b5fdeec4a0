import keras
import numpy as np
import pytest

from keras_aigc.models.vae import PosteriorParams


def test_diagonal_scale_is_positive_and_invertible():
    layer = PosteriorParams(latent_dim=3)
    assert layer.num_params == 6
    raw = np.array([[0.1, -0.2, 0.3, -50.0, 0.0, 2.0]], np.float32)
    loc, scale = layer(raw)
    np.testing.assert_allclose(np.asarray(loc), raw[:, :3])
    expected = np.logaddexp(0.0, raw[:, 3:]) + 1e-5
    np.testing.assert_allclose(np.asarray(scale), expected, rtol=1e-5)
    assert np.all(np.asarray(scale) > 0)
    np.testing.assert_allclose(layer.raw_scale(np.float32([[0.5, 1.0, 2.0]])).numpy(),
                               np.log(np.expm1(np.float32([[0.5, 1.0, 2.0]]) - 1e-5)),
                               rtol=1e-4)


def test_full_scale_is_a_cholesky_factor_and_round_trips():
    layer = PosteriorParams(latent_dim=3, posterior="full")
    assert layer.num_params == 3 + 6
    chol = np.array([[1.0, 0, 0], [0.3, 0.5, 0], [-0.2, 0.1, 2.0]], np.float32)
    raw_scale = layer.raw_scale(chol).numpy()
    raw = np.concatenate([[0.0, 1.0, 2.0], raw_scale])[None].astype(np.float32)
    loc, scale = layer(raw)
    np.testing.assert_allclose(np.asarray(scale)[0], chol, atol=1e-5)
    np.testing.assert_allclose(np.asarray(loc)[0], [0.0, 1.0, 2.0])


def test_serializes():
    layer = PosteriorParams(latent_dim=4, posterior="full", name="p")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert again.get_config() == layer.get_config()


def test_bad_posterior():
    with pytest.raises(ValueError, match="posterior='flow'"):
        PosteriorParams(latent_dim=2, posterior="flow")


def test_diagonal_scale_equals_the_bijector_forward():
    """call() writes softplus + shift directly (ONNX-convertible); it must equal the bijector."""
    import numpy as np
    import tensorflow as tf

    from keras_aigc.models.vae.posterior_params import PosteriorParams

    layer = PosteriorParams(latent_dim=3)
    raw = tf.constant(np.random.default_rng(0).normal(0, 3, (5, 6)), tf.float32)
    _, scale = layer(raw)
    np.testing.assert_allclose(scale.numpy(), layer.bijector.forward(raw[:, 3:]).numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.raw_scale(scale).numpy(), raw[:, 3:].numpy(), rtol=1e-4,
                               atol=1e-4)


def test_full_scale_equals_the_fill_scale_tril_bijector():
    import numpy as np
    import tensorflow as tf

    from keras_aigc.models.vae.posterior_params import PosteriorParams

    layer = PosteriorParams(latent_dim=4, posterior="full")
    raw = tf.constant(np.random.default_rng(1).normal(0, 2, (3, 4 + 10)), tf.float32)
    _, scale = layer(raw)
    np.testing.assert_allclose(scale.numpy(), layer.bijector.forward(raw[:, 4:]).numpy(),
                               rtol=1e-6, atol=1e-7)
    assert np.all(np.triu(scale.numpy()[0], 1) == 0) and np.all(np.diagonal(scale[0]) > 0)

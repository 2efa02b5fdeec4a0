import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.layers import SpectralNormalization


def _dense(units=3, power_iterations=1, seed=0):
    layer = SpectralNormalization(
        keras.layers.Dense(units, kernel_initializer=keras.initializers.RandomNormal(seed=seed),
                           bias_initializer="ones"),
        power_iterations=power_iterations)
    layer.build((None, 5))
    return layer


def _u_v_sigma(layer):
    """The power-iteration step the layer takes in a training call, in numpy."""
    w = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1]).astype(np.float64)
    u = layer.vector_u.numpy().astype(np.float64)
    v = u @ w.T
    v /= np.linalg.norm(v)
    u = v @ w
    u /= np.linalg.norm(u)
    return u, v, float((v @ w @ u.T).item())


def test_converged_power_iteration_gives_unit_spectral_norm():
    layer = _dense(power_iterations=50)
    layer(np.ones((2, 5), "float32"), training=True)
    kernel = keras.ops.convert_to_numpy(layer.normalized_kernel())
    sigma = np.linalg.svd(layer.kernel.numpy(), compute_uv=False)[0]
    np.testing.assert_allclose(np.linalg.svd(kernel, compute_uv=False)[0], 1.0, rtol=1e-5)
    np.testing.assert_allclose(kernel, layer.kernel.numpy() / sigma, rtol=1e-5, atol=1e-7)


def test_forward_is_the_wrapped_layer_on_the_normalized_kernel():
    layer = _dense()
    x = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
    u, _, sigma = _u_v_sigma(layer)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(y, x @ (layer.kernel.numpy() / sigma) + 1.0, rtol=1e-5, atol=1e-6)
    # The training call stored u; the kernel variable keeps the free W.
    np.testing.assert_allclose(layer.vector_u.numpy(), u, rtol=1e-5)


def test_gradient_flows_through_sigma_as_in_miyato_eq_12():
    """dL/dW = (G - (G . W_bar) u v^T... ) / sigma with G = dL/dW_bar (u, v held fixed):
    Miyato et al. 2018, eq. 12 (here u is the right and v the left singular vector)."""
    layer = _dense()
    x = np.random.default_rng(2).normal(size=(6, 5)).astype("float32")
    target = np.random.default_rng(3).normal(size=(6, 3)).astype("float32")
    u, v, sigma = _u_v_sigma(layer)
    w = layer.kernel.numpy().astype(np.float64)
    w_bar = w / sigma
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((layer(x, training=True) - target) ** 2)
    grad = tape.gradient(loss, layer.kernel.value).numpy()
    y = x @ w_bar + 1.0
    g = x.T.astype(np.float64) @ (2 * (y - target))  # dL/dW_bar
    expected = (g - np.sum(g * w_bar) * (v.T @ u)) / sigma
    np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected - g / sigma).max() > 1e-2  # the sigma term is not negligible


def test_keras_wrapper_still_blocks_sigma_gradient():
    """Upstream behaviour this layer works around (tensorflow/addons#1244,
    keras-team/keras#20309): Keras assigns W/sigma into the kernel and differentiates the
    layer as if that were a free weight. If this fails, Keras changed: drop the subclass."""
    inner = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(seed=0))
    layer = keras.layers.SpectralNormalization(inner)
    layer.build((None, 5))
    x = np.random.default_rng(2).normal(size=(6, 5)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) ** 2)
    grad = tape.gradient(loss, layer.kernel.value).numpy()
    w_bar = inner.kernel.numpy()  # overwritten with W / sigma by the call
    np.testing.assert_allclose(grad, x.T @ (2 * (x @ w_bar)), rtol=1e-4, atol=1e-5)


def test_inference_does_not_touch_u_or_kernel():
    layer = _dense()
    u0, w0 = layer.vector_u.numpy().copy(), layer.kernel.numpy().copy()
    layer(np.ones((2, 5), "float32"), training=False)
    np.testing.assert_array_equal(layer.vector_u.numpy(), u0)
    np.testing.assert_array_equal(layer.kernel.numpy(), w0)
    layer(np.ones((2, 5), "float32"), training=True)
    assert not np.array_equal(layer.vector_u.numpy(), u0)
    np.testing.assert_array_equal(layer.kernel.numpy(), w0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_conv_matches_conv2d_on_the_normalized_kernel(data_format):
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", data_format=data_format,
                               bias_initializer="random_normal", activation="relu")
    layer = SpectralNormalization(conv)
    shape = (2, 8, 8, 3) if data_format == "channels_last" else (2, 3, 8, 8)
    x = np.random.default_rng(4).normal(size=shape).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    plain = keras.layers.Conv2D(4, 3, strides=2, padding="same", data_format=data_format,
                                activation="relu")
    plain.build(shape)
    plain.set_weights([keras.ops.convert_to_numpy(layer.normalized_kernel()),
                       conv.bias.numpy()])
    np.testing.assert_allclose(y, keras.ops.convert_to_numpy(plain(x)), rtol=1e-5, atol=1e-6)


def test_embedding_and_bf16_policy():
    layer = SpectralNormalization(keras.layers.Embedding(10, 6), dtype="mixed_bfloat16")
    layer(np.array([0, 3, 9]), training=True)
    out = layer(np.array([0, 3, 9]), training=False)
    assert out.dtype == "bfloat16" and tuple(out.shape) == (3, 6)
    table = keras.ops.convert_to_numpy(layer.normalized_kernel())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32")),
                               table[[0, 3, 9]], rtol=1e-2, atol=1e-2)


def test_model_round_trip(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = SpectralNormalization(keras.layers.Conv2D(3, 3), power_iterations=2)(inputs)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, SpectralNormalization(keras.layers.Dense(1))(x))
    x = np.random.default_rng(5).normal(size=(3, 8, 8, 1)).astype("float32")
    model(x, training=True)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[1], SpectralNormalization)
    assert loaded.layers[1].power_iterations == 2
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(model(x)))


@pytest.mark.parametrize("bad, match", [
    (lambda: SpectralNormalization(keras.layers.Conv2DTranspose(3, 3)), "Conv2DTranspose"),
    (lambda: SpectralNormalization(keras.layers.Dense(3), power_iterations=0),
     "power_iterations"),
    (lambda: SpectralNormalization(keras.layers.Dense(3), power_iterations=1.5),
     "power_iterations"),
])
def test_bad_arguments_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()

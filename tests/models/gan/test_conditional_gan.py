import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import models


def make(checks, **kwargs):
    return lambda: models.ConditionalGAN(num_classes=checks.NUM_CLASSES, **checks.TINY,
                                         embedding_dim=4, feature_dim=8, seed=3, **kwargs)


def test_generator_is_functional_with_int32_labels(gan_checks):
    model = make(gan_checks)()
    g = model.inference_generator
    assert [t.name for t in g.inputs] == ["z", "labels"]
    assert g.inputs[1].dtype == "int32" and tuple(g.inputs[1].shape) == (None,)
    assert tuple(g.outputs[0].shape) == (None, 16, 16, 1)


def test_projection_discriminator_is_psi_plus_inner_product(gan_checks):
    model = make(gan_checks, spectral_norm=False)()
    d = model.discriminator
    x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 1], np.int32)
    features = keras.Model(d.inputs, d.get_layer("features_act").output)([x, y]).numpy()
    psi = d.get_layer("psi")
    embed = d.get_layer("projection").kernel.numpy()
    expected = features @ psi.kernel.numpy() + psi.bias.numpy() \
        + np.sum(embed[y] * features, axis=1, keepdims=True)
    np.testing.assert_allclose(d([x, y]).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_every_discriminator_weight_layer_is_spectrally_normalized(gan_checks):
    d = make(gan_checks)().discriminator
    weighted = [layer for layer in d.layers if layer.weights]
    assert {layer.name for layer in weighted} == {"sn_down0", "sn_features", "sn_psi",
                                                  "sn_projection"}
    assert all(isinstance(layer, keras.layers.SpectralNormalization) for layer in weighted)
    # The class embedding stays float and gets gradients.
    x = tf.random.uniform((2, 16, 16, 1), -1, 1, seed=0)
    with tf.GradientTape() as tape:
        out = d([x, tf.constant([0, 2])], training=True)
    grad = tape.gradient(out, d.get_layer("sn_projection").layer.kernel)
    assert grad is not None and np.abs(grad.numpy()).sum() > 0


def test_generate_follows_the_labels(gan_checks):
    model = make(gan_checks)()
    z = model.latents(3, seed=0)
    out = model.generate(3, labels=[2, 2, 0], seed=0)
    g = model.inference_generator
    expected = g([tf.constant(z), tf.constant([2, 2, 0], tf.int32)], training=False)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-6)
    # An int broadcasts; None cycles through the classes.
    np.testing.assert_array_equal(model.generate(3, labels=2, seed=0)[:2], out[:2])
    cycled = model.generate(4, seed=1)
    np.testing.assert_array_equal(cycled, model.generate(4, labels=[0, 1, 2, 0], seed=1))


@pytest.mark.parametrize("labels, match", [
    ([0, 1, 3], r"labels must be in \[0, 3\) \(num_classes=3\), got labels=\[3\]"),
    ([0, -1, 2], r"got labels=\[-1\]"),
    ([0, 1], r"expected shape \(3,\), got labels of shape \(2,\)"),
    ([[0, 1, 2]], r"expected shape \(3,\), got labels of shape \(1, 3\)"),
    ([0.5, 1, 2], "labels must be integers"),
])
def test_generate_rejects_bad_labels(gan_checks, labels, match):
    model = make(gan_checks)()
    with pytest.raises(ValueError, match=match):
        model.generate(3, labels=labels, seed=0)


def test_training_needs_labels(gan_checks):
    model = make(gan_checks)()
    model.compile()
    with pytest.raises(ValueError, match=r"\(images, labels\) batches.*labels=True"):
        model.fit(gan_checks.tiny_dataset(labels=False), epochs=1, steps_per_epoch=1,
                  verbose=0)


def test_mirrored_two_replicas_then_keras_round_trip(gan_checks, tmp_path):
    model = gan_checks.mirrored_fit(make(gan_checks, ema_decay=0.9), labels=True)
    gan_checks.keras_round_trip(model, tmp_path, labels=True)


def test_mixed_bfloat16(gan_checks):
    gan_checks.bfloat16_fit(make(gan_checks), labels=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 1}, "num_classes must be an integer >= 2, got num_classes=1"),
    ({"embedding_dim": 0}, "embedding_dim must be a positive integer, got embedding_dim=0"),
    ({"loss": "nope"}, "Unrecognized GAN loss='nope'"),
    ({"d_steps": 0}, "d_steps=0"),
])
def test_bad_arguments(gan_checks, kwargs, match):
    args = {"num_classes": 3, **gan_checks.TINY, **kwargs}
    with pytest.raises(ValueError, match=match):
        models.ConditionalGAN(**args)


def conditioning_accuracy(model, classifier, n=500):
    labels = np.arange(n) % model.num_classes
    images = model.generate(n, labels=labels, seed=123)
    return float(np.mean(classifier.predict(images, verbose=0).argmax(1) == labels))


@pytest.mark.slow
def test_conditioning_on_digits(digits_classifier):
    from keras_aigc import data

    keras.utils.set_random_seed(0)
    ds = data.load("digits", batch_size=64, labels=True, drop_remainder=True).repeat()
    model = models.ConditionalGAN(
        num_classes=10, image_shape=(32, 32, 1), latent_dim=32, embedding_dim=16,
        g_filters=(64, 32, 16), d_filters=(32, 64), kernel_size=4, feature_dim=64, seed=0)
    model.compile()
    # Control: the untrained generator ignores its labels, so the check can fail.
    assert conditioning_accuracy(model, digits_classifier) < 0.3
    model.fit(ds, epochs=1, steps_per_epoch=500, verbose=0)
    assert conditioning_accuracy(model, digits_classifier) >= 0.7


def test_d_batchnorm_normalizes_the_projection_discriminator_and_round_trips(gan_checks,
                                                                             tmp_path):
    model = make(gan_checks, spectral_norm=False, d_batchnorm=True, loss="non_saturating")()
    d = model.discriminator
    bn = [layer.name for layer in d.layers if isinstance(layer, keras.layers.BatchNormalization)]
    # After every conv but the first, and after the feature layer (as the DCGAN D).
    expected = [f"down{i}_bn" for i in range(1, len(gan_checks.TINY["d_filters"]))]
    assert bn == expected + ["features_bn"]
    assert d.get_layer("down0").use_bias and not d.get_layer("features").use_bias
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in make(gan_checks, spectral_norm=False)().discriminator.layers)
    assert model.get_config()["d_batchnorm"] is True
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    y = rng.integers(0, gan_checks.NUM_CLASSES, 8).astype("int32")
    model.compile()
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, verbose=0)
    # Training moved the moving statistics away from their (0, 1) start.
    assert not np.allclose(d.get_layer("features_bn").moving_mean.numpy(), 0.0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.d_batchnorm is True
    np.testing.assert_array_equal(loaded.discriminator([x, y], training=False).numpy(),
                                  d([x, y], training=False).numpy())


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_d_batchnorm_must_be_a_bool(gan_checks, value):
    with pytest.raises(ValueError, match="d_batchnorm must be true or false"):
        make(gan_checks, d_batchnorm=value)()

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aigc as ka
from tests import harness


def tiny(**kwargs):
    args = dict(image_shape=(16, 16, 1), latent_dim=8, g_filters=(16, 8, 4), d_filters=(4, 8),
                kernel_size=3, dropout=0.0, seed=7)
    args.update(kwargs)
    return ka.models.DCGAN(**args)


def test_tf_tutorial_preset_matches_the_tutorial():
    gan = ka.models.DCGAN.from_preset("tf_tutorial")
    # Parameter counts printed by the TensorFlow DCGAN tutorial's model.summary().
    assert gan.generator.count_params() == 2_330_944
    assert gan.discriminator.count_params() == 212_865
    assert gan.image_shape == (28, 28, 1) and gan.latent_dim == 100
    kinds = [type(layer).__name__ for layer in gan.generator.layers]
    assert kinds.count("Conv2DTranspose") == 3 and kinds.count("BatchNormalization") == 3
    strides = [layer.strides for layer in gan.generator.layers
               if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert strides == [(1, 1), (2, 2), (2, 2)]
    assert gan.discriminator.get_layer("down0_dropout").rate == 0.3


def test_call_builds_without_data_and_generate_is_reproducible():
    gan = tiny()
    out = gan(tf.zeros((3, 8)))
    assert out.shape == (3, 16, 16, 1) and out.dtype == tf.float32
    a, b = gan.generate(5, seed=1), gan.generate(5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 16, 16, 1) and a.min() >= -1 and a.max() <= 1
    assert not np.array_equal(a, gan.generate(5, seed=2))


def test_config_round_trip():
    clone = harness.assert_config_round_trip(tiny(loss="non_saturating"))
    assert clone.g_filters == (16, 8, 4) and clone.seed == 7


def test_keras_round_trip_after_training(tmp_path):
    gan = tiny()
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer="rmsprop")
    x = np.random.default_rng(0).uniform(-1, 1, (16, 16, 16, 1)).astype("float32")
    gan.fit(x, batch_size=8, epochs=1, verbose=0)
    loaded = harness.assert_keras_round_trip(gan, tmp_path)
    assert isinstance(loaded.d_optimizer, keras.optimizers.RMSprop)
    assert int(loaded.g_optimizer.iterations) == int(gan.g_optimizer.iterations) == 2
    # Optimizer state comes back too, so training resumes where it stopped.
    for a, b in zip(gan.g_optimizer.variables, loaded.g_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_two_replicas_equal_one_replica():
    x = np.random.default_rng(1).uniform(-1, 1, (32, 16, 16, 1)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(16, drop_remainder=True)
    one, two = harness.assert_replicas_agree(tiny, ds, steps=2)
    assert set(one) == {"d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"}


def test_global_batch_averaging_known_value():
    """With D's logits forced to 0, both losses are known: d = 2 log 2, g = log 2."""
    gan = tiny()
    for w in gan.discriminator.weights:
        w.assign(tf.zeros_like(w))
    gan.compile(g_optimizer=keras.optimizers.SGD(0.0), d_optimizer=keras.optimizers.SGD(0.0))
    x = np.zeros((8, 16, 16, 1), np.float32)
    logs = gan.train_on_batch(x, return_dict=True)
    np.testing.assert_allclose(logs["d_loss"], 2 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(logs["g_loss"], np.log(2), rtol=1e-6)


def test_test_step_reports_validation_metrics():
    gan = tiny()
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    logs = gan.evaluate(x, batch_size=4, verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "d_real_accuracy", "d_fake_accuracy"}
    assert all(np.isfinite(v) for v in logs.values())


@pytest.mark.parametrize("kwargs,match", [
    ({"d_steps": 0}, "d_steps must be an integer >= 1"),
    ({"latent_dim": 0}, "latent_dim must be a positive integer"),
    ({"loss": "nope"}, r"Unrecognized GAN loss='nope'. Supported losses are: \["),
    ({"image_shape": (15, 15, 1)}, "divisible by"),
    ({"image_shape": (16, 16)}, r"image_shape must be \(H, W, C\)"),
    ({"dropout": 1.0}, "dropout must be in"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_bad_compile_and_generate_arguments():
    gan = tiny()
    with pytest.raises(ValueError, match="g_optimizer= and d_optimizer="):
        gan.compile(optimizer="adam")
    with pytest.raises(ValueError, match="Could not build g_optimizer"):
        gan.compile(g_optimizer="not_an_optimizer")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        gan.generate(0)
    with pytest.raises(ValueError, match="unconditional"):
        gan.generate(2, labels=[1, 2])
    with pytest.raises(ValueError, match="Unrecognized preset='big'"):
        ka.models.DCGAN.from_preset("big")


def _mean_image_distance(images, reference):
    return float(np.sqrt(((images.mean(0) - reference.mean(0)) ** 2).sum()))


def _nn_distance(images, reference):
    a = images.reshape(len(images), -1)
    b = reference.reshape(len(reference), -1)
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return float(np.sqrt(np.maximum(d2.min(1), 0)).mean())


def _learn_digits(policy):
    """Trains a small DCGAN on digits for 300 steps under `policy`; returns the two
    statistics (mean-image distance, nearest-neighbour distance) before and after."""
    keras.utils.set_random_seed(0)
    train = ka.data.load("digits", batch_size=64, drop_remainder=True)
    x_val, _, _ = ka.data.load_arrays("digits", "validation")
    reference = x_val.astype(np.float32) / 127.5 - 1.0
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        gan = ka.models.DCGAN(image_shape=(32, 32, 1), latent_dim=32, g_filters=(64, 32, 16),
                              d_filters=(16, 32), kernel_size=4, seed=0)
        gan.compile()
        before = gan.generate(180, seed=5)
        gan.fit(train.repeat(), epochs=1, steps_per_epoch=300, verbose=0)
        after = gan.generate(180, seed=5)
        assert gan.compute_dtype == ("bfloat16" if policy == "mixed_bfloat16" else "float32")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return {"mean": (_mean_image_distance(before, reference),
                     _mean_image_distance(after, reference)),
            "nn": (_nn_distance(before, reference), _nn_distance(after, reference))}


@pytest.mark.slow
def test_dcgan_learns_digits_and_bfloat16_learns_as_well_as_float32():
    """After ~300 steps on digits, samples are closer to held-out data than before, in
    float32 and in mixed_bfloat16, and bf16 ends as close as float32 (issue 17: sample
    quality under bf16 must match fp32 at the same budget).

    Two statistics: the L2 distance between the mean sample and the mean validation image,
    and the mean distance from each sample to its nearest validation image.
    """
    stats = {policy: _learn_digits(policy) for policy in ("float32", "mixed_bfloat16")}
    for policy, s in stats.items():
        (mean_before, mean_after), (nn_before, nn_after) = s["mean"], s["nn"]
        # The untrained generator's mean image is a flat grey far from the digits' mean.
        assert mean_after < 0.5 * mean_before, (policy, mean_before, mean_after)
        assert nn_after < 0.75 * nn_before, (policy, nn_before, nn_after)
    # bf16 rounds activations to 8 mantissa bits; the samples it learns must be as close
    # to the data as float32's (within 15% on each statistic).
    f32, b16 = stats["float32"], stats["mixed_bfloat16"]
    assert b16["nn"][1] < 1.15 * f32["nn"][1], stats
    assert b16["mean"][1] < 1.15 * f32["mean"][1] + 0.5, stats


def test_compile_keeps_only_the_two_gan_optimizers(tmp_path):
    """Keras' default compile() optimizer (RMSprop over all weights) is not kept or saved."""
    gan = tiny()
    gan.compile()
    assert gan.optimizer is None
    x = np.zeros((8, 16, 16, 1), np.float32)
    gan.fit(x, batch_size=8, epochs=1, verbose=0)
    assert gan.optimizer is None
    gan.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert loaded.optimizer is None and int(loaded.g_optimizer.iterations) == 1


def _batchnorm_sync_flags(gan):
    return [layer.synchronized for layer in gan.generator.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def test_batchnorm_synchronization_is_the_requested_one_in_any_scope():
    assert _batchnorm_sync_flags(tiny()) == [True, True, True]
    with harness.two_replica_strategy().scope():
        assert _batchnorm_sync_flags(tiny()) == [True, True, True]
        assert _batchnorm_sync_flags(tiny(sync_batchnorm=False)) == [False, False, False]
    assert tiny(sync_batchnorm=False).get_config()["sync_batchnorm"] is False


def test_d_batchnorm_adds_batch_norm_after_every_conv_but_the_first(tmp_path):
    kwargs = dict(image_shape=(16, 16, 1), latent_dim=4, g_filters=(8, 4), d_filters=(4, 8, 8),
                  kernel_size=3, dropout=0.0, seed=0)
    plain = ka.models.DCGAN(**kwargs)
    model = ka.models.DCGAN(**kwargs, d_batchnorm=True)
    bn = [layer.name for layer in model.discriminator.layers
          if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn == ["down1_bn", "down2_bn"]
    assert not any(isinstance(layer, keras.layers.BatchNormalization)
                   for layer in plain.discriminator.layers)
    # Convs followed by batch norm carry no bias; the first conv keeps its bias.
    assert model.discriminator.get_layer("down0").use_bias
    assert not model.discriminator.get_layer("down1").use_bias
    assert model.get_config()["d_batchnorm"] is True
    model.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.d_batchnorm is True
    np.testing.assert_array_equal(loaded.discriminator(x, training=False).numpy(),
                                  model.discriminator(x, training=False).numpy())


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_d_batchnorm_must_be_a_bool(value):
    with pytest.raises(ValueError, match="d_batchnorm must be true or false"):
        ka.models.DCGAN(image_shape=(16, 16, 1), g_filters=(8, 4), d_filters=(4,),
                        d_batchnorm=value)


def test_hidden_units_add_infogan_style_dense_layers_and_round_trip(tmp_path):
    kwargs = dict(image_shape=(16, 16, 1), latent_dim=4, g_filters=(8, 4), d_filters=(4, 8),
                  kernel_size=3, dropout=0.0, d_batchnorm=True, seed=0)
    model = ka.models.DCGAN(**kwargs, g_hidden_units=12, d_hidden_units=10)
    g_hidden = model.generator.get_layer("hidden")
    d_hidden = model.discriminator.get_layer("hidden")
    # G: latent -> 12 -> projection; D: flattened (4 * 4 * 8) -> 10 -> logit.
    assert g_hidden.kernel.shape == (4, 12)
    assert model.generator.get_layer("project").kernel.shape == (12, 8 * 8 * 8)
    assert d_hidden.kernel.shape == (4 * 4 * 8, 10)
    assert model.discriminator.get_layer("logit").kernel.shape == (10, 1)
    # Batch norm follows both dense layers (D's only with d_batchnorm), so no bias.
    assert not g_hidden.use_bias and not d_hidden.use_bias
    model.discriminator.get_layer("hidden_bn")
    without = ka.models.DCGAN(**{**kwargs, "d_batchnorm": False}, d_hidden_units=10)
    assert without.discriminator.get_layer("hidden").use_bias
    assert model.get_config()["g_hidden_units"] == 12
    model.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 1)).astype("float32")
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert (loaded.g_hidden_units, loaded.d_hidden_units) == (12, 10)
    np.testing.assert_array_equal(loaded.generate(4, seed=1), model.generate(4, seed=1))
    np.testing.assert_array_equal(loaded.discriminator(x, training=False).numpy(),
                                  model.discriminator(x, training=False).numpy())
    plain = ka.models.DCGAN(**kwargs)
    with pytest.raises(ValueError):
        plain.generator.get_layer("hidden")


@pytest.mark.parametrize("arg", ["g_hidden_units", "d_hidden_units"])
@pytest.mark.parametrize("value", [0, -3, 2.5, True, "1024"])
def test_hidden_units_must_be_positive_integers(arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be None or a positive integer"):
        ka.models.DCGAN(image_shape=(16, 16, 1), g_filters=(8, 4), d_filters=(4,),
                        **{arg: value})

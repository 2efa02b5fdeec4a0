"""Shared checks for every GAN family: 2-replica fit, mixed precision fit, .keras round trip."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

TINY = {"image_shape": (16, 16, 1), "latent_dim": 8, "g_filters": (16, 8), "d_filters": (8,),
        "kernel_size": 3}
NUM_CLASSES = 3


def tiny_dataset(batch_size=8, labels=False, n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 16, 16, 1)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if labels else x)
    return ds.batch(batch_size, drop_remainder=True).repeat()


def fit_two_steps(make_model, labels=False, strategy=None, **compile_kwargs):
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = make_model()
        model.compile(**compile_kwargs)
    history = model.fit(tiny_dataset(labels=labels), epochs=1, steps_per_epoch=2, verbose=0)
    for name, values in history.history.items():
        assert np.all(np.isfinite(values)), (name, values)
    assert int(model.g_optimizer.iterations.numpy()) == 2
    return model, history


def mirrored_strategy():
    """The session's one 2-replica MirroredStrategy (see tests.harness)."""
    from tests.harness import two_replica_strategy

    return two_replica_strategy()


def check_mirrored_fit(make_model, labels=False):
    strategy = mirrored_strategy()
    assert strategy.num_replicas_in_sync == 2
    model, history = fit_two_steps(make_model, labels=labels, strategy=strategy)
    assert {"d_loss", "g_loss"} <= set(history.history)
    return model


def check_bfloat16_fit(make_model, labels=False):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, _ = fit_two_steps(make_model, labels=labels)
        assert model.compute_dtype == "bfloat16"
        kwargs = {"labels": np.arange(3) % NUM_CLASSES} if labels else {}
        images = model.generate(3, seed=0, **kwargs)
        assert images.dtype == np.float32 and np.all(np.isfinite(images))
        assert model.inference_generator.outputs[0].dtype == "float32"
        assert model.discriminator.outputs[0].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def check_keras_round_trip(model, tmp_path, labels=False):
    from tests.harness import assert_keras_round_trip

    kwargs = {"labels": [2, 0, 1, 1]} if labels else {}
    loaded = assert_keras_round_trip(model, tmp_path, generate_kwargs=kwargs)
    assert loaded.get_config() == model.get_config()
    assert int(loaded.d_optimizer.iterations.numpy()) == int(model.d_optimizer.iterations.numpy())
    return loaded


@pytest.fixture
def gan_checks():
    return types.SimpleNamespace(
        TINY=TINY, NUM_CLASSES=NUM_CLASSES, tiny_dataset=tiny_dataset,
        fit_two_steps=fit_two_steps, mirrored_fit=check_mirrored_fit,
        bfloat16_fit=check_bfloat16_fit, keras_round_trip=check_keras_round_trip,
    )


@pytest.fixture(scope="session")
def digits_classifier():
    """A small CNN trained once per session on `digits` (32x32, [-1, 1]); ~96% test accuracy."""
    from keras_aigc import data

    keras.utils.set_random_seed(0)
    x, y, _ = data.load_arrays("digits", "train")
    clf = keras.Sequential([
        keras.Input((32, 32, 1)),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    clf.fit(x.astype(np.float32) / 127.5 - 1, y, epochs=15, batch_size=64, verbose=0)
    x_test, y_test, _ = data.load_arrays("digits", "test")
    _, accuracy = clf.evaluate(x_test.astype(np.float32) / 127.5 - 1, y_test, verbose=0)
    assert accuracy > 0.9, accuracy
    return clf

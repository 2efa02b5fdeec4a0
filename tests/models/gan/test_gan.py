"""The GAN base class: penalties, generator EMA, DiffAugment, d_steps, mixed precision."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import models
from keras_aigc.layers import DiffAugment
from keras_aigc.models.gan.dcgan import build_dcgan_generator

DCGAN_TINY = {"image_shape": (16, 16, 1), "latent_dim": 8, "g_filters": (16, 8),
              "d_filters": (8,), "kernel_size": 3, "dropout": 0.0}


def linear_critic_gan(**kwargs):
    """A GAN whose discriminator is f(x) = w . x, so input gradients are w."""
    generator = build_dcgan_generator((16, 16, 1), 8, (16, 8), 3, sync_batchnorm=False)
    x = keras.Input((16, 16, 1))
    out = keras.layers.Dense(1, use_bias=False, name="w")(keras.layers.Flatten()(x))
    return models.GAN(generator, keras.Model(x, out), latent_dim=8, seed=0, **kwargs)


@pytest.mark.parametrize("penalty, closed_form", [
    ("gradient_penalty", lambda w, lam: lam * (np.linalg.norm(w) - 1) ** 2),
    ("one_sided_gradient_penalty", lambda w, lam: lam * max(0.0, np.linalg.norm(w) - 1) ** 2),
    ("r1", lambda w, lam: lam / 2 * np.sum(w ** 2)),
])
def test_train_step_adds_the_penalty_of_the_discriminator(gan_checks, penalty, closed_form):
    model = linear_critic_gan(loss="wasserstein", penalty=penalty, penalty_weight=3.0)
    model.compile()
    w = model.discriminator.get_layer("w")
    # Norm 1.5 so that the one-sided variant is active too.
    w.kernel.assign(w.kernel * (1.5 / np.linalg.norm(w.kernel.numpy())))
    w0 = w.kernel.numpy().astype(np.float64)
    logs = model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=1, verbose=0)
    np.testing.assert_allclose(logs.history["d_penalty"][0], closed_form(w0, 3.0), rtol=1e-4)


def test_generator_ema_equals_the_closed_form(gan_checks):
    decay, k = 0.8, 3
    model = models.DCGAN(**DCGAN_TINY, ema_decay=decay, seed=0)
    initial = [v.numpy().astype(np.float64) for v in model.generator.weights]
    trainable = [v.trainable for v in model.generator.weights]
    history = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            history.append([v.numpy().astype(np.float64) for v in self.model.generator.weights])

    model.compile()
    model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=k, verbose=0,
              callbacks=[Record()])
    assert len(history) == k
    for j, ema in enumerate(model.ema_generator.weights):
        if trainable[j]:
            # ema_k = d^k w_0 + (1 - d) sum_i d^(k - i) w_i
            expected = decay ** k * initial[j] + sum(
                (1 - decay) * decay ** (k - i) * history[i - 1][j] for i in range(1, k + 1))
            np.testing.assert_allclose(ema.numpy(), expected, rtol=1e-5, atol=1e-6)
    # The EMA generator is what generates, and it differs from the raw one.
    assert model.inference_generator is model.ema_generator
    z = model.latents(2, seed=0)
    np.testing.assert_allclose(model.generate(2, seed=0),
                               model.ema_generator(z, training=False).numpy(), rtol=1e-6)
    assert not np.allclose(model.generate(2, seed=0),
                           model.generator(z, training=False).numpy())
    assert not model.ema_generator.trainable_weights


def test_ema_batchnorm_statistics_describe_the_averaged_weights(gan_checks):
    """The EMA generator's BN moving statistics follow its own (averaged) weights.

    One alternating step from known weights: the first BN layer normalises
    `project(z) = z @ K` (no bias), so its moving mean/variance after the step are, in closed
    form, `m * m0 + (1 - m) * moments(z @ K_ema)` with the step's latents and the EMA kernel
    after the update — not the live generator's statistics.
    """
    decay, batch = 0.5, 8
    model = models.DCGAN(**DCGAN_TINY, ema_decay=decay, seed=0)
    model.compile()
    model.build()
    bn = model.ema_generator.get_layer("project_bn")
    m0, v0 = bn.moving_mean.numpy().astype(np.float64), bn.moving_variance.numpy()
    z = model.sample_latents(batch, model.d_steps).numpy().astype(np.float64)  # step 0's draw
    model.fit(gan_checks.tiny_dataset(batch_size=batch), epochs=1, steps_per_epoch=1,
              verbose=0)
    x = z @ model.ema_generator.get_layer("project").kernel.numpy().astype(np.float64)
    mom = bn.momentum
    np.testing.assert_allclose(bn.moving_mean.numpy(), mom * m0 + (1 - mom) * x.mean(0),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), mom * v0 + (1 - mom) * x.var(0),
                               rtol=1e-4, atol=1e-6)
    live = model.generator.get_layer("project_bn").moving_mean.numpy()
    assert not np.allclose(bn.moving_mean.numpy(), live, atol=1e-6)
    # Unfrozen only for that call: the EMA copy still has no trainable weights.
    assert not model.ema_generator.trainable_weights
    assert all(not layer.trainable for layer in model.ema_generator.layers)


def test_ema_weights_are_stored_in_keras_files(gan_checks, tmp_path):
    model = models.DCGAN(**DCGAN_TINY, ema_decay=0.5, seed=0)
    model.compile()
    model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=2, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.ema_decay == 0.5
    for a, b in zip(loaded.ema_generator.weights, model.ema_generator.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(loaded.generate(3, seed=1), model.generate(3, seed=1))


@pytest.mark.parametrize("d_steps", [3])
def test_d_steps_critic_updates_per_generator_update(gan_checks, d_steps):
    model, _ = gan_checks.fit_two_steps(
        lambda: models.DCGAN(**DCGAN_TINY, d_steps=d_steps, seed=0))
    assert int(model.g_optimizer.iterations.numpy()) == 2
    assert int(model.d_optimizer.iterations.numpy()) == 2 * d_steps


def _op_types(concrete_function):
    graph_def = concrete_function.graph.as_graph_def()
    ops = {node.op for node in graph_def.node}
    for fn in graph_def.library.function:
        ops.update(node.op for node in fn.node_def)
    return ops


def test_diff_augment_is_used_in_training_and_absent_from_the_exported_generator(
        gan_checks, tmp_path):
    model = models.DCGAN(**DCGAN_TINY, diff_augment="color,translation,cutout", seed=0)
    model.compile()
    state0 = model.augmenter.seed_generator.state.numpy().copy()
    model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=2, verbose=0)
    # One draw per augment() call: real and fake for D, fake for G, per step.
    assert model.augmenter.seed_generator.state.numpy()[1] - state0[1] == 2 * 3

    generator = model.inference_generator
    assert not any(isinstance(layer, DiffAugment) for layer in generator._flatten_layers())
    generator.export(str(tmp_path / "generator"), format="tf_saved_model", verbose=False)
    serve = tf.saved_model.load(str(tmp_path / "generator")).signatures["serving_default"]
    exported_ops = _op_types(serve)

    # The same check on a graph that does augment finds the ops, so it can fail.
    augment_fn = tf.function(lambda x: model.augmenter(x, training=True)).get_concrete_function(
        tf.TensorSpec((None, 16, 16, 1), tf.float32))
    augment_ops = {"StatelessRandomUniformV2", "GatherV2"}
    assert augment_ops <= _op_types(augment_fn)
    assert not augment_ops & exported_ops
    assert "Conv2DBackpropInput" in exported_ops  # it is the generator graph


def test_mixed_float16_wraps_both_optimizers_in_loss_scale_optimizers(gan_checks):
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.DCGAN(**DCGAN_TINY, seed=0)
        model.compile()
        for opt in (model.g_optimizer, model.d_optimizer):
            assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
        model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=2, verbose=0)
        # Loss scaling either applied both steps or halved the scale on overflow.
        for opt in (model.g_optimizer, model.d_optimizer):
            applied = int(opt.iterations.numpy())
            halvings = round(np.log2(opt.initial_scale / float(opt.dynamic_scale.numpy())))
            assert applied + halvings == 2, (applied, halvings)
        assert model.generate(2, seed=0).dtype == np.float32
        assert model.generator.outputs[0].dtype == "float32"
        config = model.get_compile_config()
        assert config["g_optimizer"]["class_name"] == "LossScaleOptimizer"
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "wgan"}, r"Unrecognized GAN loss='wgan'. Supported losses are: \["),
    ({"d_steps": 0}, "d_steps must be an integer >= 1, got d_steps=0"),
    ({"d_steps": 2.0}, "d_steps must be an integer >= 1, got d_steps=2.0"),
    ({"penalty": "r1", "penalty_weight": -1.0},
     "penalty_weight must be a non-negative number, got penalty_weight=-1.0"),
    ({"penalty": "gp"}, r"Unrecognized penalty='gp'. Supported penalties are: \[None, "),
    ({"ema_decay": 1.0}, r"ema_decay must be None or a number in \[0, 1\), got ema_decay=1.0"),
    ({"diff_augment": "flip"}, r"Unrecognized policy='flip'. Supported transforms are"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.DCGAN(**DCGAN_TINY, **kwargs)


def test_config_lists_the_new_arguments():
    model = models.DCGAN(**DCGAN_TINY, penalty="r1", penalty_weight=0.5, ema_decay=0.9,
                         diff_augment=["cutout"], seed=4)
    config = model.get_config()
    assert {k: config[k] for k in ("penalty", "penalty_weight", "ema_decay", "diff_augment")} \
        == {"penalty": "r1", "penalty_weight": 0.5, "ema_decay": 0.9,
            "diff_augment": ["cutout"]}
    clone = models.DCGAN.from_config(config)
    assert clone.get_config() == config


def test_base_gan_serializes_its_networks(tmp_path):
    """A GAN given its own networks stores them in the config; built-in architectures
    (architecture_args) store their constructor arguments instead."""
    model = linear_critic_gan()
    config = model.get_config()
    assert {"generator", "discriminator"} <= set(config)
    model.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"))
    np.testing.assert_array_equal(loaded.generate(3, seed=1), model.generate(3, seed=1))
    dcgan_config = models.DCGAN(**DCGAN_TINY).get_config()
    assert "generator" not in dcgan_config
    assert dcgan_config["image_shape"] == list(DCGAN_TINY["image_shape"])

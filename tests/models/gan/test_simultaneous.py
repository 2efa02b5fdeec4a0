"""GAN(update="simultaneous"): the TF DCGAN tutorial's step, both players from one pass."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import models
from keras_aigc.distribute import replica_normal
from keras_aigc.losses import GAN_LOSSES
from tests import harness

TINY = {"image_shape": (8, 8, 1), "latent_dim": 4, "g_filters": (8, 4), "d_filters": (4,),
        "kernel_size": 3, "dropout": 0.0, "seed": 3}
LR_G, LR_D = 0.05, 0.03


def tiny(**kwargs):
    return models.DCGAN(**{**TINY, **kwargs})


def images(n=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 8, 8, 1)).astype(np.float32)


def hand_step(model, real):
    """The tutorial's step written out with plain tapes on clones and w -= lr * grad."""
    g = keras.models.clone_model(model.generator)
    g.set_weights(model.generator.get_weights())
    d = keras.models.clone_model(model.discriminator)
    d.set_weights(model.discriminator.get_weights())
    z = replica_normal(model.seed, 0, len(real), model.latent_dim)  # draw 0 of step 0
    with tf.GradientTape(persistent=True) as tape:
        fake = g(z, training=True)
        real_logits, fake_logits = d(real, training=True), d(fake, training=True)
        # non-saturating: D = -log s(r) - log(1 - s(f)), G = -log s(f); global-batch means
        d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits))
        g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
    g_grads = tape.gradient(g_loss, g.trainable_variables)
    d_grads = tape.gradient(d_loss, d.trainable_variables)
    for v, grad in zip(g.trainable_variables, g_grads, strict=True):
        v.assign_sub(LR_G * grad)
    for v, grad in zip(d.trainable_variables, d_grads, strict=True):
        v.assign_sub(LR_D * grad)
    return g.get_weights(), d.get_weights(), float(d_loss), float(g_loss)


def test_one_step_equals_the_hand_computed_step():
    model = tiny(update="simultaneous")
    model.compile(g_optimizer=keras.optimizers.SGD(LR_G), d_optimizer=keras.optimizers.SGD(LR_D))
    real = images()
    g_w, d_w, d_loss, g_loss = hand_step(model, real)
    before = model.discriminator.get_weights()
    logs = model.train_on_batch(real, return_dict=True)
    np.testing.assert_allclose(logs["d_loss"], d_loss, rtol=1e-6)
    np.testing.assert_allclose(logs["g_loss"], g_loss, rtol=1e-6)
    for got, want in zip(model.generator.get_weights(), g_w, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    for got, want in zip(model.discriminator.get_weights(), d_w, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # Both optimizers stepped once; D really moved.
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == 1
    assert any(not np.allclose(a, b) for a, b in zip(before, model.discriminator.get_weights()))


def test_simultaneous_differs_from_alternating():
    """The alternating step updates G against the already-updated D, on fresh latents."""
    weights = tiny().get_weights()
    out = {}
    for update in ("alternating", "simultaneous"):
        model = tiny(update=update)
        model.compile(g_optimizer=keras.optimizers.SGD(LR_G),
                      d_optimizer=keras.optimizers.SGD(LR_D))
        model.set_weights(weights)
        model.train_on_batch(images())
        out[update] = model.generator.get_weights()
    assert any(not np.allclose(a, b, atol=1e-6)
               for a, b in zip(out["alternating"], out["simultaneous"]))


def test_two_replicas_equal_one_replica():
    ds = tf.data.Dataset.from_tensor_slices(images(32, seed=1)).batch(16, drop_remainder=True)
    one, _ = harness.assert_replicas_agree(lambda: tiny(update="simultaneous"), ds, steps=2)
    assert {"d_loss", "g_loss"} <= set(one)


@pytest.mark.parametrize("penalty, closed_form", [
    ("gradient_penalty", lambda w, lam: lam * (np.linalg.norm(w) - 1) ** 2),
    ("r1", lambda w, lam: lam / 2 * np.sum(w ** 2)),
])
def test_penalties(gan_checks, penalty, closed_form):
    from tests.models.gan.test_gan import linear_critic_gan

    model = linear_critic_gan(loss="wasserstein", penalty=penalty, penalty_weight=3.0,
                              update="simultaneous")
    model.compile()
    w0 = model.discriminator.get_layer("w").kernel.numpy().astype(np.float64)
    logs = model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=1, verbose=0)
    np.testing.assert_allclose(logs.history["d_penalty"][0], closed_form(w0, 3.0), rtol=1e-4)
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == 1


@pytest.mark.parametrize("loss", sorted(GAN_LOSSES))
def test_every_loss_with_ema_and_diff_augment(gan_checks, loss):
    model = models.DCGAN(**gan_checks.TINY, loss=loss, ema_decay=0.5, seed=0,
                         diff_augment="color,translation", update="simultaneous")
    model.compile()
    state0 = model.augmenter.seed_generator.state.numpy().copy()
    history = model.fit(gan_checks.tiny_dataset(), epochs=1, steps_per_epoch=2, verbose=0)
    assert all(np.all(np.isfinite(v)) for v in history.history.values())
    # One augment draw for the real and one for the fake batch per step (alternating: 3).
    assert model.augmenter.seed_generator.state.numpy()[1] - state0[1] == 2 * 2
    # The EMA generator follows the trained one without equalling it.
    z = model.latents(2, seed=0)
    ema_out = model.ema_generator(z, training=False).numpy()
    assert np.all(np.isfinite(ema_out))
    assert not np.allclose(ema_out, model.generator(z, training=False).numpy())


def test_config_preset_and_errors(tmp_path):
    assert models.DCGAN.from_preset("tf_tutorial").update == "simultaneous"
    model = tiny(update="simultaneous")
    config = model.get_config()
    assert config["update"] == "simultaneous"
    assert models.DCGAN.from_config(config).update == "simultaneous"
    assert tiny().get_config()["update"] == "alternating"
    with pytest.raises(ValueError, match=r"Unrecognized update='both'. Supported updates are: "
                                         r"\['alternating', 'simultaneous'\]"):
        tiny(update="both")
    with pytest.raises(ValueError, match="update='simultaneous' .* needs d_steps=1; got d_steps=3"):
        tiny(update="simultaneous", d_steps=3)
    with pytest.raises(ValueError, match="needs d_steps=1; got d_steps=5"):
        models.WGANGP(image_shape=(8, 8, 1), latent_dim=4, g_filters=(8, 4), d_filters=(4,),
                      update="simultaneous")
    model.compile()
    model.fit(images(), batch_size=8, epochs=1, verbose=0)
    loaded = harness.assert_keras_round_trip(model, tmp_path)
    assert loaded.update == "simultaneous"


def test_conditional_gan_simultaneous(gan_checks):
    model, _ = gan_checks.fit_two_steps(
        lambda: models.ConditionalGAN(num_classes=gan_checks.NUM_CLASSES, **gan_checks.TINY,
                                      update="simultaneous", seed=0), labels=True)
    assert int(model.d_optimizer.iterations) == 2

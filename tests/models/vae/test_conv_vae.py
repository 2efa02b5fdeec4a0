"""ConvVAE: convolutional encoder, VAE's dense decoder, the quality recipe's config."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from keras_aigc import models
from keras_aigc.cli import config as config_lib
from tests import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
TINY = dict(image_shape=(8, 8, 1), latent_dim=3, channels=(4, 6), hidden_units=(16,))


def tiny(**kw):
    return models.ConvVAE(**{**TINY, "seed": 1, **kw})


def binary_images(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 8, 8, 1)) < 0.3).astype(np.float32)


def dataset():
    return tf.data.Dataset.from_tensor_slices(binary_images()).batch(
        8, drop_remainder=True).repeat()


def test_encoder_halves_the_resolution_per_conv_and_decoder_is_dense():
    vae = tiny()
    convs = [layer for layer in vae.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [tuple(c.output.shape[1:]) for c in convs] == [(4, 4, 4), (2, 2, 6)]
    assert [c.strides for c in convs] == [(2, 2), (2, 2)]
    assert not any(isinstance(layer, keras.layers.Conv2D) for layer in vae.decoder.layers)
    loc, scale = vae.encode(binary_images(5))
    assert loc.shape == scale.shape == (5, 3) and np.all(scale > 0)
    out = vae.decode(np.zeros((4, 3), np.float32))
    assert out.shape == (4, 8, 8, 1) and out.min() >= 0 and out.max() <= 1


def test_decoder_equals_the_mlp_vae_decoder_with_the_same_weights():
    conv = tiny(activation="tanh")
    mlp = models.VAE(image_shape=(8, 8, 1), latent_dim=3, hidden_units=(16,),
                     activation="tanh", seed=1)
    mlp.decoder.set_weights(conv.decoder.get_weights())
    z = np.random.default_rng(3).standard_normal((7, 3)).astype(np.float32)
    np.testing.assert_allclose(conv.decode(z), mlp.decode(z), rtol=1e-6, atol=1e-7)


def test_iwae_training_tightens_the_bound_and_log_likelihood_exceeds_elbo():
    vae = tiny(objective="iwae", iwae_samples=4)
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = binary_images(32, seed=1)
    before = vae.log_likelihood(x, num_samples=64, seed=0).mean()
    hist = vae.fit(dataset(), epochs=1, steps_per_epoch=30, verbose=0)
    assert np.isfinite(hist.history["iwae"]).all()
    assert hist.history["iwae"][-1] >= hist.history["elbo"][-1]
    after = vae.log_likelihood(x, num_samples=64, seed=0).mean()
    assert after > before
    # log p(x) estimated with K samples is >= the ELBO in expectation (Burda et al.).
    assert after >= vae.elbo(x, num_samples=64, seed=0).mean()


def test_harness_config_keras_round_trip_and_replicas(tmp_path):
    model = tiny()
    config = harness.assert_config_round_trip(model).get_config()
    assert config["channels"] == [4, 6] and config["hidden_units"] == [16]
    harness.assert_keras_round_trip(model, tmp_path)
    harness.assert_replicas_agree(tiny, dataset(), steps=2, atol=1e-4)


@pytest.mark.slow
def test_export_parity_and_runtime(tmp_path):
    model = tiny()
    model.compile()
    model.fit(dataset(), epochs=1, steps_per_epoch=1, verbose=0)
    harness.assert_export_parity(model, tmp_path / "bundle")
    harness.assert_runtime_generates(model, tmp_path / "bundle")


@pytest.mark.parametrize("kwargs, match", [
    (dict(channels=()), r"channels must hold at least one positive integer"),
    (dict(channels=(4, 0)), r"channels entries must be a positive integer, got "
                            r"channels entries=0"),
    (dict(channels="32"), r"channels must be a list of positive integers, got "
                          r"channels='32'"),
    (dict(image_shape=(12, 12, 1), channels=(4, 4, 4)),
     r"image_shape=\(12, 12, 1\) does not fit channels=\(4, 4, 4\).*divisible by 8"),
    (dict(hidden_units=(0,)), r"hidden_units entries must be a positive integer"),
])
def test_bad_arguments_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.ConvVAE(**{**TINY, **kwargs})


def test_quality_config_builds_the_configured_model():
    path = os.path.join(ROOT, "configs", "vae_mnist_quality.yaml")
    config = config_lib.load_config(path)
    section = dict(config["model"])
    cls = models.get(section.pop("name"))
    assert cls is models.ConvVAE
    model = cls(**section)
    got = model.get_config()
    for key, value in section.items():
        assert got[key] == value, key
    # The learning-rate schedule deserializes as the model's compile() reads it.
    model.compile(optimizer=config["compile"]["optimizer"])
    schedule = model.optimizer.get_config()["learning_rate"]
    assert schedule["class_name"] == "CosineDecay"
    assert schedule["config"]["decay_steps"] == 91455
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)


def test_a_misspelt_conv_vae_key_names_its_dotted_path(tmp_path):
    with open(os.path.join(ROOT, "configs", "vae_mnist_quality.yaml")) as f:
        config = yaml.safe_load(f)
    config["model"]["chanels"] = [8, 8]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(config_lib.ConfigError, match=r"model.chanels: unknown key"):
        config_lib.load_config(str(path))

"""ResNet GAN (unconditional and conditional) and ResNet VAE: shared harness + export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import models
from keras_aigc.layers import ConditionalBatchNorm
from keras_aigc.models.gan.resnet import RESNET_PRESETS
from keras_aigc.models.vae.resnet_vae import RESNET_VAE_PRESETS
from tests import harness

TINY_GAN = dict(image_shape=(8, 8, 3), latent_dim=8, g_channels=(8, 8), d_channels=(8, 8))
TINY_VAE = dict(image_shape=(8, 8, 3), latent_dim=4, channels=(4, 8))


def tiny_gan(**kw):
    return models.ResNetGAN(**{**TINY_GAN, "seed": 1, **kw})


def tiny_cgan(**kw):
    return models.ConditionalResNetGAN(num_classes=3, **{**TINY_GAN, "seed": 1, **kw})


def tiny_vae(**kw):
    return models.ResNetVAE(**{**TINY_VAE, "seed": 1, "likelihood": "gaussian", **kw})


def images(n=16, labels=False, sigmoid=False):
    rng = np.random.default_rng(0)
    x = rng.uniform(0 if sigmoid else -1, 1, (n, 8, 8, 3)).astype(np.float32)
    y = (np.arange(n) % 3).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if labels else x)
    return ds.batch(8, drop_remainder=True).repeat()


def test_conditional_batch_norm_uses_the_row_of_each_label():
    layer = ConditionalBatchNorm(3, synchronized=False)
    x = np.random.default_rng(0).normal(size=(4, 2, 2, 5)).astype(np.float32)
    labels = np.array([0, 2, 1, 2])
    layer([x, labels])
    gamma = np.arange(15, dtype=np.float32).reshape(3, 5)
    beta = -np.arange(15, dtype=np.float32).reshape(3, 5)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    y = keras.ops.convert_to_numpy(layer([x, labels], training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    normed = (x - mean) / np.sqrt(var + 1e-5)
    expected = normed * gamma[labels][:, None, None] + beta[labels][:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    clone = ConditionalBatchNorm.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_presets_build_with_expected_shapes_and_sizes():
    for name, preset in RESNET_PRESETS.items():
        g = models.gan.build_resnet_generator(preset["image_shape"], preset["latent_dim"],
                                              preset["g_channels"])
        d = models.gan.build_resnet_discriminator(preset["image_shape"], preset["d_channels"])
        assert g.output_shape[1:] == preset["image_shape"], name
        assert d.output_shape[1:] == (1,), name
        assert g.count_params() > 1_000_000 and d.count_params() > 1_000_000
    for name, preset in RESNET_VAE_PRESETS.items():
        vae = models.ResNetVAE(architecture=name)
        assert vae.image_shape == preset["image_shape"]
        assert vae.decoder.output_shape[1:] == preset["image_shape"][:2] + (3,)


def test_blocks_are_residual_with_spectral_norm_in_d():
    model = tiny_cgan()
    g_layers = {layer.name: layer for layer in model.generator.layers}
    assert isinstance(g_layers["block0_bn1"], ConditionalBatchNorm)
    assert "block0_add" in g_layers and "block0_sc_conv" in g_layers
    d_layers = model.discriminator.layers
    weighted = [layer for layer in d_layers if layer.weights and not isinstance(
        layer, keras.layers.SpectralNormalization)]
    assert weighted == [], [layer.name for layer in weighted]
    assert any(layer.name == "inner_product" for layer in d_layers)
    assert [i.name for i in model.generator.inputs] == ["z", "labels"]


def test_projection_changes_the_logit_with_the_label():
    model = tiny_cgan()
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)
    a = model.discriminator([x, np.array([0, 0])]).numpy()
    b = model.discriminator([x, np.array([1, 1])]).numpy()
    assert not np.allclose(a, b)


@pytest.mark.parametrize("make,labels", [(tiny_gan, False), (tiny_cgan, True)])
def test_gan_harness(make, labels, tmp_path):
    model = make()
    model.build()
    harness.assert_config_round_trip(model)
    kwargs = {"labels": np.array([0, 1, 2, 0])} if labels else None
    harness.assert_replicas_agree(make, images(labels=labels), steps=2, atol=1e-4)
    harness.assert_keras_round_trip(model, tmp_path, generate_kwargs=kwargs)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "logistic"])
def test_vae_likelihoods_train(likelihood):
    ds = images(sigmoid=True)
    if likelihood == "bernoulli":
        ds = ds.map(lambda x: tf.cast(x > 0.5, tf.float32))
    vae = tiny_vae(likelihood=likelihood)
    vae.compile()
    hist = vae.fit(ds, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.all(np.isfinite(hist.history["elbo"]))
    out = vae.generate(3, seed=0)
    assert out.shape == (3, 8, 8, 3) and np.all(np.isfinite(out))
    if likelihood != "gaussian":  # the Gaussian mean is the unbounded location
        assert out.min() >= 0 and out.max() <= 1


def test_vae_harness(tmp_path):
    model = tiny_vae()
    harness.assert_config_round_trip(model)
    assert "channels" in model.get_config() and "hidden_units" not in model.get_config()
    harness.assert_replicas_agree(tiny_vae, images(sigmoid=True), steps=2, atol=1e-4)
    harness.assert_keras_round_trip(model, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("make", [tiny_gan, tiny_cgan, tiny_vae])
def test_export_bundle_parity(make, tmp_path):
    from keras_aigc.export import export_bundle

    model = make()
    if not model.built:
        model.build()
    # export_bundle runs every written file on fresh inputs against Keras and fails
    # the export when a file is outside its tolerance; the manifest records parity.
    manifest = export_bundle(model, str(tmp_path / "bundle"), formats=("saved_model", "onnx"))
    assert manifest["files"]
    assert {e["format"] for e in manifest["files"]} >= {"saved_model", "onnx"}
    for entry in manifest["files"]:
        assert entry["parity"], entry  # the per-signature, per-batch-size comparisons


@pytest.mark.parametrize("kwargs, match", [
    (dict(architecture="resnet48"), "Unrecognized architecture='resnet48'"),
    (dict(image_shape=(10, 10, 3), g_channels=(8, 8, 8), d_channels=(8, 8)),
     "divisible by 4"),
    (dict(g_channels=(8,)), "g_channels must hold at least two"),
])
def test_gan_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.ResNetGAN(**{**TINY_GAN, **kwargs})


def test_vae_bad_arguments():
    with pytest.raises(ValueError, match="divisible by 8"):
        models.ResNetVAE(image_shape=(12, 12, 3), channels=(4, 4, 4))
    with pytest.raises(ValueError, match="hidden_units"):
        models.ResNetVAE(hidden_units=(16,))
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        models.ConditionalResNetGAN(num_classes=1, **TINY_GAN)


@pytest.mark.slow
@pytest.mark.parametrize("make,labels", [(tiny_gan, None), (tiny_cgan, [2, 0, 1, 2])])
def test_tflite_needs_fixed_batches_and_then_runs_in_the_runtime(make, labels, tmp_path):
    """A dynamic-batch TFLite file's image shape reads [-1, -1, W, C], which the runtime
    refuses: the model declares TFLite fixed-batch only, and a fixed batch loads and
    generates what Keras generates."""
    import keras_aigc_runtime
    from keras_aigc.export import default_formats, export_bundle
    from keras_aigc_runtime import postprocess

    model = make()
    assert default_formats(model) == ("saved_model", "onnx")
    with pytest.raises(ValueError, match=f"{type(model).__name__} cannot be exported to format "
                                         "'tflite' with a dynamic batch: .*loses its height"):
        export_bundle(model, str(tmp_path / "dyn"), formats=("tflite",))
    assert not (tmp_path / "dyn").exists()
    export_bundle(model, str(tmp_path / "b"), formats=("tflite",), batch_sizes=(4,), seed=0)
    g = keras_aigc_runtime.load(str(tmp_path / "b"), backend="tflite")
    z = postprocess.sample_latents(g.manifest["latent"], 4, np.random.default_rng(5))
    got = g.generate(4, seed=5, labels=labels).astype(int)
    ref = postprocess.to_uint8(model.generate_from_latents(z, labels),
                               g.manifest["output"]["to_uint8"]).astype(int)
    assert got.shape == (4, 8, 8, 3) and np.abs(got - ref).max() <= 1

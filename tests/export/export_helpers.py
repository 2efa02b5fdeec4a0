"""Tiny exportable models for the export tests.

All are the real classes (DCGAN, ConditionalGAN, VAE, ConditionalVAE), made tiny.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.models import DCGAN, GAN, VAE, ConditionalGAN, ConditionalVAE

LATENT_DIM = 8
NUM_CLASSES = 3


def tiny_dcgan():
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                  d_filters=(4,), kernel_size=3, name="tiny_dcgan")
    model.build()
    _randomize_batchnorm(model.generator)
    return model


def _randomize_batchnorm(model):
    # Untrained BN statistics are the identity; set non-trivial ones so parity means more.
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n).astype("float32"))


def tiny_cgan():
    """The real ConditionalGAN (label embedding, projection discriminator), small."""
    model = ConditionalGAN(num_classes=NUM_CLASSES, image_shape=(8, 8, 1),
                           latent_dim=LATENT_DIM, embedding_dim=4, g_filters=(8, 8, 4),
                           d_filters=(4,), kernel_size=3, feature_dim=8, name="tiny_cgan")
    _randomize_batchnorm(model.generator)
    return model


def tiny_vae():
    """The real VAE, small: 8x8 images, one hidden layer, a diagonal posterior."""
    return VAE(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, hidden_units=(16,),
               name="tiny_vae")


def tiny_cvae():
    """The real ConditionalVAE with a full-covariance posterior (scale is (B, d, d))."""
    return ConditionalVAE(image_shape=(8, 8, 1), num_classes=NUM_CLASSES,
                          latent_dim=LATENT_DIM, hidden_units=(16,), posterior="full",
                          name="tiny_cvae")


FACTORIES = {"dcgan": tiny_dcgan, "cgan": tiny_cgan, "vae": tiny_vae, "cvae": tiny_cvae}


def fresh_inputs(model, signature, n):
    """Inputs drawn now from an unseeded generator, independent of the exporter's draws."""
    from keras_aigc.export import export_spec

    spec = export_spec(model)
    return spec, spec.sample_inputs(spec.signature(signature), n, np.random.default_rng())



class Roll(keras.layers.Layer):
    """`tf.roll` has no TFLite builtin kernel (only the Flex op FlexRoll)."""

    def call(self, x):
        return tf.roll(x, 1, axis=1)


class LGamma(keras.layers.Layer):
    """`tf.math.lgamma`: the converter lowers it to builtins that compute garbage here."""

    def call(self, x):
        return tf.math.lgamma(x)


def gan_with_unsupported_op(layer=Roll):
    z = keras.Input((LATENT_DIM,))
    x = keras.layers.Dense(64, activation="softplus")(z)
    x = layer()(keras.layers.Reshape((8, 8, 1))(x))
    generator = keras.Model(z, keras.layers.Activation("tanh")(x), name="bad_gen")
    img = keras.Input((8, 8, 1))
    discriminator = keras.Model(img, keras.layers.Dense(1)(keras.layers.Flatten()(img)))
    return GAN(generator, discriminator, latent_dim=LATENT_DIM, name="bad_gan")


# ------------------------------------------------------------------------------------------
# Independent runners: the tests load every file with its runtime directly, not through the
# exporter's own helpers.
def run_saved_model(path, key, names, inputs):
    fn = tf.saved_model.load(path).signatures[key]
    res = fn(**{k: tf.constant(v) for k, v in zip(names, inputs, strict=True)})
    return {k: v.numpy() for k, v in res.items()}


def run_tflite(path, key, names, inputs):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=path).get_signature_runner(key)
    in_d, out_d = runner.get_input_details(), runner.get_output_details()
    feed = {}
    for name, x in zip(names, inputs, strict=True):
        d = in_d[name]
        if d["dtype"] == np.int8:
            scale, zp = d["quantization"]
            x = np.clip(np.round(x / scale) + zp, -128, 127)
        feed[name] = np.asarray(x).astype(d["dtype"])
    out = {}
    for name, v in runner(**feed).items():
        scale, zp = out_d[name]["quantization"]
        out[name] = (v.astype(np.float32) - zp) * scale if v.dtype == np.int8 else v
    return out


def run_onnx(path, names, inputs):
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    res = sess.run(None, dict(zip(names, inputs, strict=True)))
    return dict(zip([o.name for o in sess.get_outputs()], res, strict=True))

"""Every model family through the shared harness (`tests/harness.py`), one parametrisation
per model; a new family gets every check by adding one line to `MODELS`.

`MomentMatcher` is a stand-in family defined only here: it implements just the
`GenerativeModel` contract, and trains, saves, exports and serves with no library change.
"""

import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import models as ka_models
from keras_aigc.distribute import global_mean, replica_normal
from keras_aigc.layers import LabelOneHot
from keras_aigc.models import (
    DCGAN,
    SNGAN,
    VAE,
    WGANGP,
    BetaVAE,
    ConditionalGAN,
    ConditionalResNetGAN,
    ConditionalVAE,
    ConvVAE,
    GenerativeModel,
    PixelCNN,
    ResNetGAN,
    ResNetVAE,
)
from tests import harness

NUM_CLASSES = 3


@keras.saving.register_keras_serializable(package="keras_aigc_tests")
class MomentMatcher(GenerativeModel):
    """A conditional dense generator trained to reconstruct its class's images from noise
    (a regression, not a GAN): the smallest model that has every part of the contract.

    Args:
        num_classes: int. Defaults to `3`.
        latent_dim: int. Defaults to `3`.
        image_shape: tuple. Defaults to `(4, 4, 1)`.
        seed: int. Seed of the training noise. Defaults to `0`.
    """

    family = "moment_matcher"
    conditional = True
    config_args = ("num_classes", "latent_dim", "image_shape", "seed")

    def __init__(self, num_classes=NUM_CLASSES, latent_dim=3, image_shape=(4, 4, 1), seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.latent_dim, self.seed = num_classes, latent_dim, seed
        self.image_shape = tuple(image_shape)
        z = keras.Input((latent_dim,), name="z")
        labels = keras.Input((), dtype="int32", name="labels")
        onehot = LabelOneHot(num_classes)(labels)
        h = keras.layers.Concatenate()([z, onehot])
        x = keras.layers.Dense(int(np.prod(image_shape)), activation="tanh")(h)
        self.net = keras.Model([z, labels], keras.layers.Reshape(self.image_shape)(x))
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True  # its one network is built: export and save need no data

    def call(self, inputs, training=False):
        return self.net(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        x, labels = self.unpack_batch(data)
        z = replica_normal(self.seed, self.optimizer.iterations, tf.shape(x)[0], self.latent_dim)
        with tf.GradientTape() as tape:
            fake = self.net([z, tf.cast(labels, tf.int32)], training=True)
            per_example = tf.reduce_mean(tf.square(fake - x), axis=[1, 2, 3])
            loss = global_mean(per_example)
        variables = self.net.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(per_example)
        return self.step_logs({"loss": self.loss_tracker.result()})

    def decode_latents(self, z, labels):
        return self.net([z, labels], training=False)

    def export_tracked(self):
        return [self.net]

    def export_signatures(self):
        def generate(z, labels):
            return {"image": self.net([z, labels], training=False)}

        return [self.image_signature("generate", generate)]


GAN_ARGS = {"image_shape": (8, 8, 1), "latent_dim": 4, "g_filters": (8, 4), "d_filters": (4,),
            "kernel_size": 3}
VAE_ARGS = {"image_shape": (8, 8, 1), "latent_dim": 3, "hidden_units": (8,), "seed": 1}
RESNET_GAN_ARGS = {"image_shape": (8, 8, 3), "latent_dim": 4, "g_channels": (8, 8),
                   "d_channels": (8, 8), "seed": 1}
PIXEL_CNN_ARGS = {"image_shape": (4, 4, 1), "filters": 4, "num_layers": 2,
                  "first_kernel_size": 3}

# name -> (model factory, kind of data: "signed" in [-1, 1] or "binary" in {0, 1})
MODELS = {
    # Keras' Dropout draws its masks per replica (not replica-exact): off for the check.
    "DCGAN": (lambda: DCGAN(seed=1, dropout=0.0, **GAN_ARGS), "signed"),
    "WGANGP": (lambda: WGANGP(seed=1, **GAN_ARGS), "signed"),
    "SNGAN": (lambda: SNGAN(seed=1, **GAN_ARGS), "signed"),
    "ConditionalGAN": (lambda: ConditionalGAN(num_classes=NUM_CLASSES, embedding_dim=4,
                                              feature_dim=8, seed=1, **GAN_ARGS), "signed"),
    "VAE": (lambda: VAE(**VAE_ARGS), "binary"),
    "BetaVAE": (lambda: BetaVAE(**VAE_ARGS), "binary"),
    "ConditionalVAE": (lambda: ConditionalVAE(num_classes=NUM_CLASSES, **VAE_ARGS), "binary"),
    "ConvVAE": (lambda: ConvVAE(channels=(4,), **VAE_ARGS), "binary"),
    "ResNetVAE": (lambda: ResNetVAE(image_shape=(8, 8, 3), latent_dim=3, channels=(4, 8),
                                    seed=1), "binary"),
    "ResNetGAN": (lambda: ResNetGAN(**RESNET_GAN_ARGS), "signed"),
    "ConditionalResNetGAN": (lambda: ConditionalResNetGAN(num_classes=NUM_CLASSES,
                                                          **RESNET_GAN_ARGS), "signed"),
    "PixelCNN": (lambda: PixelCNN(**PIXEL_CNN_ARGS), "binary"),
    "ConditionalPixelCNN": (lambda: PixelCNN(num_classes=NUM_CLASSES, **PIXEL_CNN_ARGS),
                            "binary"),
    "MomentMatcher": (MomentMatcher, "signed"),
}
# 2-replica tolerance where the default 1e-5 is too tight (deep residual networks).
REPLICA_ATOL = {"ResNetGAN": 1e-4, "ConditionalResNetGAN": 1e-4, "ResNetVAE": 1e-4}


def dataset(make_model, kind, batch_size=8, n=32):
    model = make_model()
    rng = np.random.default_rng(0)
    shape = (n, *model.image_shape)
    x = (rng.uniform(-1, 1, shape) if kind == "signed"
         else (rng.random(shape) < 0.3)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y) if model.conditional else x)
    return ds.batch(batch_size, drop_remainder=True).repeat()


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_config_fit_and_keras_round_trip(name, tmp_path):
    make_model, kind = MODELS[name]
    model = harness.run_model_test(make_model, dataset(make_model, kind), tmp_path,
                                   replicas=False, export=False)
    assert isinstance(model, GenerativeModel)
    assert model.conditional == (model.num_classes is not None)
    labels = model.normalize_labels(None, 5)
    if model.num_classes is None:
        assert labels is None
        with pytest.raises(ValueError, match="unconditional"):
            model.generate(2, labels=[0, 1])
    else:
        np.testing.assert_array_equal(labels, np.arange(5) % NUM_CLASSES)
        # Positional order is (n, seed, labels, batch_size) for every family.
        np.testing.assert_array_equal(model.generate(4, 3, [1, 1, 1, 1]),
                                      model.generate(4, seed=3, labels=1))
    # batch_size is honoured: the same images whatever the chunking.
    np.testing.assert_allclose(model.generate(5, seed=2, batch_size=2),
                               model.generate(5, seed=2), atol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_one_build_for_every_family(name):
    """Families override build_networks(), never build(): GenerativeModel.build is the
    only one, and a built model stays built with the same weights when built again."""
    make_model, _ = MODELS[name]
    model = make_model()
    assert type(model).build is GenerativeModel.build
    if not model.built:
        model.build()
    weights = model.get_weights()
    model.build_networks()  # idempotent: networks already built are left as they are
    assert model.built
    for a, b in zip(weights, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_contract_two_replicas_equal_one(name):
    make_model, kind = MODELS[name]
    harness.assert_replicas_agree(make_model, dataset(make_model, kind),
                                  atol=REPLICA_ATOL.get(name, 1e-5))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_contract_export_parity_and_tf_free_runtime(name, tmp_path):
    make_model, _ = MODELS[name]
    model = make_model()
    # Formats the model leaves out are refused first (PixelCNN: Triton).
    harness.assert_export_refused(model, tmp_path / "bundle")
    if not harness.supported_formats(model):
        assert not model.export_formats and model.export_format_notes
        return
    harness.assert_export_parity(model, tmp_path / "bundle")
    harness.assert_runtime_generates(model, tmp_path / "bundle")


@pytest.mark.slow
def test_stand_in_family_trains_saves_exports_and_serves(tmp_path):
    from PIL import Image

    from tests.runtime.conftest import http, serve

    model = MomentMatcher(name="moment_matcher")
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    history = model.fit(dataset(MomentMatcher, "signed"), epochs=1, steps_per_epoch=20,
                        verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5  # uniform [-1, 1] targets: 1/3 is the floor of a mean fit
    model.save(str(tmp_path / "model.keras"))
    loaded = keras.models.load_model(str(tmp_path / "model.keras"))
    np.testing.assert_array_equal(loaded.generate(4, seed=1), model.generate(4, seed=1))
    manifest = harness.assert_export_parity(loaded, tmp_path / "bundle",
                                            formats=("onnx", "tflite"))
    assert manifest["name"] == "moment_matcher"
    with serve(str(tmp_path / "bundle")) as s:
        status, _, body = http("GET", s.base + "/v2/models/moment_matcher/generate.png"
                                              "?n=3&seed=4&labels=2&ncols=3")
        assert status == 200
        grid = np.asarray(Image.open(io.BytesIO(body)))
        import keras_aigc_runtime

        expected = keras_aigc_runtime.load(str(tmp_path / "bundle")).generate(3, seed=4,
                                                                               labels=2)
        np.testing.assert_array_equal(grid[:4, 4:8], expected[1, ..., 0])
        z = np.zeros((2, 3), np.float32)
        status, _, resp = s.infer_json("moment_matcher", [
            {"name": "z", "datatype": "FP32", "shape": [2, 3], "data": z.ravel().tolist()},
            {"name": "labels", "datatype": "INT32", "shape": [2], "data": [0, 2]}])
        assert status == 200, resp
        image = np.asarray(json.loads(resp)["outputs"][0]["data"], np.float32)
        np.testing.assert_allclose(image.reshape(2, 4, 4, 1),
                                   model.generate_from_latents(z, [0, 2]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(ka_models.MODELS))
def test_takes_image_shape_is_declared_by_every_registered_family(name):
    """`keras-aigc train` fills `image_shape` from the data for families that declare it
    (`config_args` / `architecture_args`), instead of reading constructor signatures; the
    declaration must agree with the constructor."""
    import inspect

    cls = ka_models.MODELS[name]
    takes = "image_shape" in inspect.signature(cls.__init__).parameters
    if issubclass(cls, ka_models.VAE):  # subclasses pass it through **kwargs to VAE
        takes = takes or "image_shape" in inspect.signature(ka_models.VAE.__init__).parameters
    assert cls.takes_image_shape() is takes
    assert ka_models.GAN.takes_image_shape() is False


@pytest.mark.parametrize("make, pixels, setting", [
    (lambda: VAE(**VAE_ARGS), "binary", "likelihood='bernoulli'"),
    (lambda: ka_models.PixelCNN(**{**PIXEL_CNN_ARGS, "distribution": "categorical"}), "unit",
     "distribution='categorical'"),
])
def test_check_image_batch_is_one_check_for_every_likelihood_family(make, pixels, setting):
    """VAE and PixelCNN validate a batch through the contract's one `check_image_batch`:
    the shape against `image_shape`, then the pixel values their likelihood needs."""
    model = make()
    shape = (2, *model.image_shape)
    with pytest.raises(ValueError, match=r"Input images have shape \(2, 3, 3, 1\), expected "
                                         r"\(batch, " + ", ".join(map(str, model.image_shape))):
        model.check_image_batch(np.zeros((2, 3, 3, 1), np.float32), pixels, setting)
    bad = np.full(shape, 0.5 if pixels == "binary" else 1.5, np.float32)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                       match=f"{setting} needs " + ("binary pixels" if pixels == "binary"
                                                    else r"pixels in \[0, 1\]")):
        model.log_likelihood(bad)
    ok = model.check_image_batch(np.ones(shape, np.uint8), pixels, setting)
    assert ok.dtype == tf.float32 and ok.shape == shape
    # Gaussian-likelihood families check only the shape.
    assert model.check_image_batch(np.full(shape, 7.0, np.float32)).shape == shape
    with pytest.raises(ValueError, match="pixels must be None, 'binary' or 'unit', got 'rgb'"):
        model.check_image_batch(np.ones(shape, np.float32), "rgb")

import hashlib

import keras
import numpy as np
import pytest

from keras_aigc.export import export_spec
from keras_aigc.models import GenerativeModel
from keras_aigc_runtime.manifest import sha256_path, size_bytes
from tests.export.export_helpers import LATENT_DIM, NUM_CLASSES, tiny_cgan, tiny_dcgan, tiny_vae


def test_family_dispatch():
    gan = export_spec(tiny_dcgan())
    assert gan.family == "gan" and [s.name for s in gan.signatures] == ["generate"]
    assert gan.image_shape == (8, 8, 1) and gan.num_classes is None
    cgan = export_spec(tiny_cgan())
    assert cgan.family == "conditional_gan" and cgan.num_classes == NUM_CLASSES
    assert [t.role for t in cgan.signature("generate").inputs] == ["latent", "label"]
    vae = export_spec(tiny_vae())
    assert vae.family == "vae" and vae.value_range == (0.0, 1.0)
    assert [s.name for s in vae.signatures] == ["decode", "encode"]
    assert [t.name for t in vae.signature("encode").outputs] == ["loc", "scale"]


def test_sampled_inputs_follow_the_prior():
    spec = export_spec(tiny_cgan())
    z, labels = spec.sample_inputs(spec.signature("generate"), 4000, np.random.default_rng(0))
    assert z.shape == (4000, LATENT_DIM) and z.dtype == np.float32
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
    assert labels.dtype == np.int32 and set(labels) == set(range(NUM_CLASSES))
    vae = export_spec(tiny_vae())
    (images,) = vae.sample_inputs(vae.signature("encode"), 5, np.random.default_rng(0))
    assert images.shape == (5, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0


def test_export_signatures_protocol():
    class Custom(GenerativeModel):
        latent_dim = 2
        image_shape = (2, 2, 3)
        family = "linear"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(12),
                                         keras.layers.Reshape((2, 2, 3))])

        def call(self, z):
            return self.net(z)

        def export_tracked(self):
            return [self.net]

        def export_signatures(self):
            return [self.image_signature("generate", lambda z: {"image": self.net(z)})]

    model = Custom()
    model(np.zeros((1, 2), np.float32))
    spec = export_spec(model)
    assert spec.image_shape == (2, 2, 3) and spec.tracked == [model.net]
    assert spec.family == "linear" and spec.num_classes is None


def test_export_spec_asks_the_contract():
    with pytest.raises(ValueError, match="GenerativeModel"):
        export_spec(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]))


def test_sha256_path_of_file_and_directory(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.bin").write_bytes(b"abc")
    (tmp_path / "a.txt").write_bytes(b"")
    h_abc = hashlib.sha256(b"abc").hexdigest()
    h_empty = hashlib.sha256(b"").hexdigest()
    assert sha256_path(str(tmp_path / "b" / "x.bin")) == h_abc
    assert size_bytes(str(tmp_path / "b" / "x.bin")) == 3 == size_bytes(str(tmp_path))
    text = f"{h_empty} a.txt\n{h_abc} b/x.bin\n"
    assert sha256_path(str(tmp_path)) == hashlib.sha256(text.encode()).hexdigest()


def test_not_a_model_is_rejected():
    with pytest.raises(ValueError, match="GenerativeModel.*builtins.str"):
        export_spec("dcgan")


def test_gan_exports_the_inference_generator():
    # A GAN with an EMA copy exposes it as `inference_generator`; export must use it.
    class EMAStandIn(type(tiny_dcgan())):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.ema_generator = keras.models.clone_model(self.generator)

        @property
        def inference_generator(self):
            return self.ema_generator

    model = EMAStandIn(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                       d_filters=(4,), kernel_size=3)
    model.build()
    model.ema_generator.set_weights([w * 0.5 for w in model.generator.get_weights()])
    spec = export_spec(model)
    assert spec.ema_weights and spec.tracked == [model.ema_generator]
    z = np.random.default_rng().standard_normal((3, LATENT_DIM)).astype(np.float32)
    out = spec.keras_outputs(spec.signature("generate"), [z])["image"]
    np.testing.assert_allclose(out, model.ema_generator(z).numpy(), atol=1e-6)
    assert np.abs(out - model.generator(z).numpy()).max() > 1e-3

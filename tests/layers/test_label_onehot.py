import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.layers import LabelOneHot
from keras_aigc.layers.label_onehot import one_hot_labels
from keras_aigc.models import (
    VAE,
    ConditionalGAN,
    ConditionalResNetGAN,
    ConditionalVAE,
    PixelCNN,
)


def test_known_values_for_flat_and_column_labels():
    layer = LabelOneHot(4)
    expected = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.float32)
    np.testing.assert_array_equal(layer(np.array([2, 0, 3], np.int32)), expected)
    np.testing.assert_array_equal(layer(np.array([[2], [0], [3]], np.int64)), expected)
    out = layer(tf.constant([1], tf.int32))
    assert out.dtype == tf.float32 and tuple(out.shape) == (1, 4)


def test_config_round_trip_and_keras_file_without_custom_objects(tmp_path):
    layer = LabelOneHot(5, name="onehot")
    clone = LabelOneHot.from_config(layer.get_config())
    assert clone.num_classes == 5 and clone.get_config() == layer.get_config()
    labels = keras.Input((), dtype="int32", name="labels")
    model = keras.Model(labels, keras.layers.Dense(2)(LabelOneHot(5)(labels)))
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    y = np.array([4, 0, 2], np.int32)
    np.testing.assert_array_equal(loaded(y), model(y))
    assert any(isinstance(layer, LabelOneHot) for layer in loaded.layers)


@pytest.mark.parametrize("labels,match", [
    ([0, 3], r"labels must be in \[0, 3\) \(num_classes=3\), got labels=\[3\]"),
    ([-1, 0], r"labels must be in \[0, 3\).*got labels=\[-1\]"),
    (np.array([0.5, 1.0], np.float32), "labels must be integers"),
])
def test_bad_eager_labels_are_refused(labels, match):
    with pytest.raises(ValueError, match=match):
        LabelOneHot(3)(np.asarray(labels))
    with pytest.raises(ValueError, match=match):
        one_hot_labels(tf.constant(labels), 3)


@pytest.mark.parametrize("num_classes", [0, -2, True, 2.0, None])
def test_bad_num_classes_is_named(num_classes):
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        LabelOneHot(num_classes)


def test_traced_graph_has_no_assertion_ops():
    """Exported graphs stay builtin-op only: the range check is eager-only."""
    fn = tf.function(lambda y: LabelOneHot(3)(y),
                     input_signature=[tf.TensorSpec((None,), tf.int32)])
    ops = {op.type for op in fn.get_concrete_function().graph.get_operations()}
    assert "OneHot" in ops
    assert not ops & {"Assert", "AssertV2"}, ops


def _layer_types(model):
    found = set()
    for layer in model.layers:
        found.add(type(layer).__name__)
        if isinstance(layer, keras.Model):
            found |= _layer_types(layer)
    return found


def test_every_conditional_network_uses_the_layer():
    gan = ConditionalGAN(num_classes=3, image_shape=(8, 8, 1), latent_dim=4, g_filters=(8, 4),
                         d_filters=(4,), kernel_size=3, embedding_dim=4, feature_dim=8, seed=1)
    resnet = ConditionalResNetGAN(num_classes=3, image_shape=(8, 8, 3), latent_dim=4,
                                  g_channels=(8, 8), d_channels=(8, 8), seed=1)
    cvae = ConditionalVAE(num_classes=3, image_shape=(4, 4, 1), latent_dim=2,
                          hidden_units=(4,), seed=1)
    for network in (gan.discriminator, resnet.discriminator, cvae.encoder, cvae.decoder):
        types = _layer_types(network)
        assert "LabelOneHot" in types and "CategoryEncoding" not in types, network.name
    # The VAE networks take the integer labels themselves.
    assert [t.dtype for t in cvae.encoder.inputs] == ["float32", "int32"]
    assert [t.dtype for t in cvae.decoder.inputs] == ["float32", "int32"]


def test_generative_model_onehot():
    cvae = ConditionalVAE(num_classes=3, image_shape=(4, 4, 1), latent_dim=2,
                          hidden_units=(4,), seed=1)
    np.testing.assert_array_equal(cvae.onehot(np.array([2, 1])), [[0, 0, 1], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        cvae.onehot(np.array([3]))
    assert VAE(image_shape=(4, 4, 1), latent_dim=2, hidden_units=(4,), seed=1).onehot(
        np.array([0])) is None
    pixel = PixelCNN((2, 2, 1), num_classes=2, filters=4, num_layers=1, first_kernel_size=3)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        pixel((np.zeros((1, 2, 2, 1), np.float32), np.array([2])))

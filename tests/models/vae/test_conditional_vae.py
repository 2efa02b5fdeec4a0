import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.models import ConditionalVAE


def _data(n=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    # Each class lights a different row, so the label carries real information.
    x = (rng.random((n, 4, 4, 1)) < 0.1).astype(np.float32)
    x[np.arange(n), labels, :, 0] = 1.0
    return x, labels


def _model(**kwargs):
    return ConditionalVAE(num_classes=3, image_shape=(4, 4, 1), latent_dim=2,
                          hidden_units=(16,), seed=1, **kwargs)


@pytest.mark.slow
def test_labels_condition_the_decoder_and_training_learns_them():
    x, y = _data(96)
    cvae = _model()
    cvae.compile(optimizer=keras.optimizers.Adam(1e-2))
    cvae.fit(x, y, batch_size=32, epochs=40, verbose=0)
    for c in range(3):
        images = cvae.generate(8, seed=0, labels=np.full(8, c))
        rows = images[..., 0].mean(axis=(0, 2))
        assert np.argmax(rows) == c, rows
    default = cvae.generate(6, seed=0)
    np.testing.assert_allclose(default[:3], cvae.generate(3, seed=0, labels=[0, 1, 2]),
                               atol=1e-6)
    # The right label explains the data better than a wrong one.
    right = cvae.log_likelihood(x[:16], labels=y[:16], num_samples=50).mean()
    wrong = cvae.log_likelihood(x[:16], labels=(y[:16] + 1) % 3, num_samples=50).mean()
    assert right > wrong + 1.0


def test_round_trip_and_export_hooks(tmp_path):
    cvae = _model(posterior="full")
    cvae.compile()
    x, y = _data()
    cvae.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "cvae.keras")
    cvae.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is ConditionalVAE and loaded.num_classes == 3
    assert loaded.get_config() == cvae.get_config()
    z = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)
    labels = np.array([0, 1, 2, 0])
    np.testing.assert_array_equal(loaded.decode(z, labels), cvae.decode(z, labels))
    out = cvae.decoder_mean_model()([z, labels.astype(np.int32)])
    np.testing.assert_allclose(np.asarray(out), cvae.decode(z, labels), atol=1e-6)
    loc, scale = cvae.encoder_model()([x[:4], y[:4].astype(np.int32)])
    np.testing.assert_allclose(np.asarray(loc), cvae.encode(x[:4], y[:4])[0], atol=1e-6)
    assert scale.shape == (4, 2, 2)
    assert cvae([tf.constant(x[:2]), tf.constant(y[:2])]).shape == (2, 4, 4, 1)


@pytest.mark.parametrize("labels, match", [
    (None, "needs labels"),
    ([0, 1], r"shape \(4,\)"),
    ([0, 1, 2, 3], r"in \[0, 3\)"),
    ([0.0, 1.0, 2.0, 0.0], "integers"),
])
def test_bad_labels(labels, match):
    cvae = _model()
    x, _ = _data(4)
    with pytest.raises(ValueError, match=match):
        cvae.elbo(x, labels=labels)


def test_fit_without_labels_says_how_to_load_them():
    cvae = _model()
    cvae.compile()
    x, _ = _data(8)
    with pytest.raises(ValueError, match="labels=True"):
        cvae.fit(x, batch_size=4, epochs=1, verbose=0)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes=0"):
        ConditionalVAE(num_classes=0, image_shape=(4, 4, 1))

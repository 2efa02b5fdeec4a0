import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.layers import DiffAugment


def images(n=6, h=8, w=8, c=1, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (n, h, w, c)).astype(np.float32)


def shifted(x, dh, dw):
    out = np.zeros_like(x)
    h, w = x.shape[:2]
    for i in range(h):
        for j in range(w):
            if 0 <= i + dh < h and 0 <= j + dw < w:
                out[i, j] = x[i + dh, j + dw]
    return out


def test_inference_is_the_identity():
    x = images()
    np.testing.assert_array_equal(DiffAugment(seed=0)(x, training=False).numpy(), x)


def test_translation_is_an_integer_shift_with_zero_fill():
    x = images(n=16)
    out = DiffAugment("translation", translation_ratio=0.25, seed=1)(x).numpy()
    seen = set()
    for xi, oi in zip(x, out, strict=True):
        matches = [(dh, dw) for dh in range(-2, 3) for dw in range(-2, 3)
                   if np.array_equal(oi, shifted(xi, dh, dw))]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert len(seen) > 1  # different images get different shifts


def test_cutout_zeroes_one_square_of_the_given_size():
    x = images(n=16)
    out = DiffAugment("cutout", cutout_ratio=0.5, seed=2)(x).numpy()
    for xi, oi in zip(x, out, strict=True):
        hole = oi[..., 0] == 0
        np.testing.assert_array_equal(oi[~hole], xi[~hole])
        rows, cols = np.where(hole.any(1))[0], np.where(hole.any(0))[0]
        assert 1 <= len(rows) <= 4 and 1 <= len(cols) <= 4
        # The hole is a full rectangle (clipped at the border).
        assert hole[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
        assert hole.sum() == len(rows) * len(cols)
    holes = (out == 0).reshape(16, -1).sum(1)
    assert (holes == 16).any()  # an unclipped 4x4 square occurs


def test_color_shifts_a_constant_image_by_its_brightness_only():
    # Saturation and contrast act around means, which a constant image equals.
    x = np.ones((8, 4, 4, 3), np.float32) * np.linspace(-0.5, 0.5, 8)[:, None, None, None]
    out = DiffAugment("color", seed=3)(x).numpy()
    delta = out - x
    np.testing.assert_allclose(delta, delta[:, :1, :1, :1] * np.ones_like(x), atol=1e-6)
    assert np.all(np.abs(delta[:, 0, 0, 0]) <= 0.5) and np.std(delta[:, 0, 0, 0]) > 0


def test_gradients_flow_to_the_pixels():
    x = tf.constant(images(c=3))
    layer = DiffAugment(seed=4)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(tf.square(layer(x)))
    grad = tape.gradient(y, x).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_two_replicas_get_their_slices_of_the_global_draw():
    x = images(n=4, c=3)
    single = DiffAugment(seed=5)(x).numpy()
    from tests.harness import two_replica_strategy

    strategy = two_replica_strategy()
    with strategy.scope():
        layer = DiffAugment(seed=5)
    ds = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(4))
    per_replica = strategy.run(tf.function(lambda b: layer(b)), args=(next(iter(ds)),))
    parts = [t.numpy() for t in strategy.experimental_local_results(per_replica)]
    np.testing.assert_allclose(np.concatenate(parts), single, rtol=1e-6, atol=1e-6)
    assert not np.allclose(parts[0] - x[:2], parts[1] - x[2:])


def test_config_round_trip():
    layer = DiffAugment("cutout,color", translation_ratio=0.2, cutout_ratio=0.3, seed=9)
    clone = DiffAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.policy == ("cutout", "color")
    x = images()
    np.testing.assert_array_equal(clone(x).numpy(), layer(x).numpy())
    assert isinstance(keras.layers.deserialize(keras.layers.serialize(layer)), DiffAugment)


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "flip"}, r"Unrecognized policy='flip'. Supported transforms are: \["),
    ({"policy": ""}, "Unrecognized policy=''"),
    ({"policy": 3}, "policy must be a string or a list of names"),
    ({"translation_ratio": 0.0}, r"translation_ratio must be in \(0, 1\], got "
                                 r"translation_ratio=0.0"),
    ({"cutout_ratio": 1.5}, r"cutout_ratio must be in \(0, 1\], got cutout_ratio=1.5"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffAugment(**kwargs)

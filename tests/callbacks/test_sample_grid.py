import json

import numpy as np
import pytest
from PIL import Image

import keras_aigc as ka
from keras_aigc.utils import make_grid, to_uint8


def test_to_uint8_known_values():
    x = np.array([-1.0, -0.5, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(to_uint8(x, (-1, 1)), [0, 64, 128, 255, 255])
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0]), (0, 1)), [0, 128, 255])
    with pytest.raises(ValueError, match="high > low"):
        to_uint8(x, (1, 1))


def test_make_grid_layout():
    pixels = np.arange(4 * 2 * 3 * 1, dtype=np.uint8).reshape(4, 2, 3, 1)
    grid = make_grid(pixels, rows=2, padding=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    np.testing.assert_array_equal(grid[1:3, 1:4], pixels[0])
    np.testing.assert_array_equal(grid[4:6, 5:8], pixels[3])


def test_sample_grid_writes_fixed_latent_pngs(tmp_path):
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                          kernel_size=3)
    gan.compile()
    grid = ka.callbacks.SampleGrid(str(tmp_path / "s"), every=2, num_images=9, seed=3)
    x = np.zeros((4, 8, 8, 1), np.float32)
    gan.fit(x, batch_size=4, epochs=4, verbose=0, callbacks=[grid])
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == [
        "epoch_0002.png", "epoch_0004.png"]
    img = np.asarray(Image.open(tmp_path / "s" / "epoch_0004.png"))
    # 3x3 grid of 8x8 images, 2 px padding, upscaled 8x (nearest): the default scale
    # gives cells of at least 64 pixels.
    assert img.shape == (8 * (3 * 10 + 2), 8 * (3 * 10 + 2))
    expected = make_grid(to_uint8(gan.generate(9, seed=3)), rows=3)
    np.testing.assert_array_equal(img[::8, ::8], expected[..., 0])
    np.testing.assert_array_equal(img[7::8, 7::8], expected[..., 0])


def test_sample_grid_explicit_scale_and_bad_scale(tmp_path):
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                          kernel_size=3)
    grid = ka.callbacks.SampleGrid(str(tmp_path / "s"), num_images=4, scale=2)
    grid.set_model(gan)
    img = np.asarray(Image.open(grid.write("x")))
    assert img.shape == (2 * (2 * 10 + 2), 2 * (2 * 10 + 2))
    with pytest.raises(ValueError, match="scale must be a positive integer or None, got 0"):
        ka.callbacks.SampleGrid(str(tmp_path / "s"), scale=0)


def test_sample_grid_only_chief_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 1}}))
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,))
    grid = ka.callbacks.SampleGrid(str(tmp_path / "s"), num_images=4)
    grid.set_model(gan)
    assert grid.write("x") is None
    assert not (tmp_path / "s").exists()
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0}}))
    assert grid.write("x").endswith("x.png")


@pytest.mark.parametrize("kwargs,match", [({"every": 0}, "every must be"),
                                          ({"num_images": -1}, "num_images must be")])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ka.callbacks.SampleGrid(str(tmp_path), **kwargs)


def test_interpolation_strip_in_tensorboard(tmp_path):
    import io

    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator as ea

    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                          kernel_size=3)
    gan.compile()
    grid = ka.callbacks.SampleGrid(str(tmp_path / "s"), every=2, num_images=4, seed=5,
                                   tensorboard_dir=str(tmp_path / "tb"), scale=2,
                                   interpolation_rows=3, interpolation_steps=5)
    x = np.zeros((4, 8, 8, 1), np.float32)
    gan.fit(x, batch_size=4, epochs=4, verbose=0, callbacks=[grid])
    acc = ea.EventAccumulator(str(tmp_path / "tb"), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    assert {"samples", "interpolation"} <= set(acc.Tags()["tensors"])
    events = acc.Tensors("interpolation")
    assert [e.step for e in events] == [1, 3]  # every 2 epochs, 0-based epoch steps
    width, height, png_bytes = tf.make_ndarray(events[-1].tensor_proto)
    strip = np.asarray(Image.open(io.BytesIO(png_bytes)))
    # 3 rows x 5 steps of 8x8 images, 2 px padding, 2x upscaled.
    assert strip.shape[:2] == (2 * (3 * 10 + 2), 2 * (5 * 10 + 2))
    assert (int(width), int(height)) == (strip.shape[1], strip.shape[0])
    # The strip is the slerp path between the fixed latents of seeds 6 and 7, decoded by
    # the trained model: row i starts at latents(3, seed=6)[i] and ends at seed 7's.
    z0, z1 = gan.latents(3, seed=6), gan.latents(3, seed=7)
    z = ka.latent.interpolate(z0, z1, 5, method="slerp")
    np.testing.assert_allclose(z[:, 0], z0, atol=1e-6)
    np.testing.assert_allclose(z[:, -1], z1, atol=1e-6)
    expected = make_grid(to_uint8(gan.generate_from_latents(z.reshape(15, 4))), rows=3)
    cells = strip[::2, ::2]
    cells = cells[..., :1] if cells.ndim == 3 else cells[..., None]
    np.testing.assert_array_equal(cells, expected)
    with pytest.raises(ValueError, match="interpolation_steps must be an integer >= 2"):
        ka.callbacks.SampleGrid(str(tmp_path), interpolation_steps=1)
    with pytest.raises(ValueError, match="interpolation_rows must be an integer >= 0"):
        ka.callbacks.SampleGrid(str(tmp_path), interpolation_rows=-1)

"""PNG grids decode back to the exact pixels (read with Pillow, which the test env has)."""

import io

import numpy as np
import pytest
from PIL import Image

from keras_aigc_runtime.png import encode_png, image_grid


def test_grid_layout_and_png_round_trip():
    imgs = np.random.default_rng(0).integers(0, 256, (5, 3, 2, 1), dtype=np.uint8)
    grid = image_grid(imgs, ncols=2)
    assert grid.shape == (9, 4, 1)
    np.testing.assert_array_equal(grid[3:6, 2:4], imgs[3])
    np.testing.assert_array_equal(grid[6:9, 2:4], 0)  # empty cell
    for c in (1, 3, 4):
        img = np.random.default_rng(c).integers(0, 256, (4, 5, c), dtype=np.uint8)
        back = np.asarray(Image.open(io.BytesIO(encode_png(img))))
        np.testing.assert_array_equal(back.reshape(img.shape), img)
    with pytest.raises(ValueError, match=r"PNG needs 1, 3 or 4 channels"):
        encode_png(np.zeros((2, 2, 2), np.uint8))

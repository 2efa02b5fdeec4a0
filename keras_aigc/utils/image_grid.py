"""Float images -> uint8 pixels -> one PNG grid.

The pixel mapping and the tiling are the bundle format's (`keras_aigc_runtime`), so a
grid written in training looks exactly like one the runtime serves.
"""

import math
import os

import numpy as np

from keras_aigc_runtime import png, postprocess


def to_uint8(images, value_range=(-1.0, 1.0)):
    """Maps float images in `value_range` to uint8 pixels (round half to even, clip)."""
    low, high = (float(v) for v in value_range)
    return postprocess.to_uint8(images, postprocess.to_uint8_spec(low, high))


def make_grid(pixels, rows=None, padding=2, pad_value=0):
    """Tiles uint8 `(N, H, W, C)` images into one `(rows*H', cols*W', C)` picture."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.dtype != np.uint8:
        raise ValueError(f"make_grid needs uint8 (N, H, W, C) images, got {pixels.dtype} "
                         f"{pixels.shape}.")
    rows = rows or int(math.ceil(math.sqrt(len(pixels))))
    return png.image_grid(pixels, rows=rows, padding=padding, pad_value=pad_value)


def save_grid(images, path, value_range=(-1.0, 1.0), rows=None, scale=2):
    """Saves float images as one PNG grid, upscaled `scale` times (nearest), atomically."""
    from PIL import Image

    grid = make_grid(to_uint8(images, value_range), rows=rows)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale and scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path

"""Float images -> uint8 pixels -> one PNG grid."""

import math
import os

import numpy as np


def to_uint8(images, value_range=(-1.0, 1.0)):
    """Maps float images in `value_range` to uint8 pixels (round, then clip)."""
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}.")
    x = (np.asarray(images, np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def make_grid(pixels, rows=None, padding=2, pad_value=0):
    """Tiles uint8 `(N, H, W, C)` images into one `(rows*H', cols*W', C)` picture."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.dtype != np.uint8:
        raise ValueError(f"make_grid needs uint8 (N, H, W, C) images, got {pixels.dtype} "
                         f"{pixels.shape}.")
    n, h, w, c = pixels.shape
    rows = rows or int(math.ceil(math.sqrt(n)))
    cols = int(math.ceil(n / rows))
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c),
                   pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = pixels[i]
    return grid


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

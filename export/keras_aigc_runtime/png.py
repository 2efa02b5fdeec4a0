"""PNG encoding of a uint8 image grid with zlib only (no Pillow on serving boxes)."""

import struct
import zlib

import numpy as np


def image_grid(images, ncols=None, rows=None, padding=0, pad_value=0):
    """Tiles uint8 `(n, H, W, C)` images into one picture, row by row.

    Args:
        images: uint8 `(n, H, W, C)`.
        ncols: int. Columns; defaults to `ceil(n / rows)` when `rows` is given, else
            `ceil(sqrt(n))`.
        rows: int. Rows, used when `ncols` is not given.
        padding: int. Pixels of `pad_value` around and between images. Defaults to `0`.
        pad_value: int. Defaults to `0`.
    """
    images = np.asarray(images, np.uint8)
    n, h, w, c = images.shape
    if ncols is None:
        ncols = -(-n // int(rows)) if rows else int(np.ceil(np.sqrt(n)))
    ncols = int(ncols)
    nrows = -(-n // ncols)
    p = int(padding)
    grid = np.full((nrows * (h + p) + p, ncols * (w + p) + p, c), pad_value, np.uint8)
    for i in range(n):
        r, q = divmod(i, ncols)
        y, x = p + r * (h + p), p + q * (w + p)
        grid[y:y + h, x:x + w] = images[i]
    return grid


def encode_png(image):
    """PNG bytes of a uint8 `(H, W)` / `(H, W, 1|3|4)` array (8-bit gray, RGB or RGBA)."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    h, w, c = image.shape
    color = {1: 0, 3: 2, 4: 6}.get(c)
    if color is None:
        raise ValueError(f"PNG needs 1, 3 or 4 channels, got image shape {image.shape}.")
    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))  # filter type 0 per row

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))

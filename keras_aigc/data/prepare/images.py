"""Per-image work of `keras-aigc prepare`: decode, validate, convert, resize, hash, encode.

This module imports only numpy, Pillow and the standard library, so that Spark executors
can run it without TensorFlow (it is shipped to them by value).
"""

import hashlib
import io
import re
import warnings

import numpy as np

# Reasons an input is dropped. `dataset.json` reports a count for each.
UNREADABLE = "unreadable"
TRUNCATED = "truncated"
DECOMPRESSION_BOMB = "decompression_bomb"
TOO_SMALL = "too_small"
EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
UNLABELED = "unlabeled"
REASONS = (UNREADABLE, TRUNCATED, DECOMPRESSION_BOMB, TOO_SMALL, UNLABELED, EXACT_DUPLICATE,
           NEAR_DUPLICATE)

COLOR_MODES = ("rgb", "grayscale", "auto")
RESIZE_MODES = ("crop", "pad")
FORMATS = ("png", "jpeg", "raw")


class Skip(Exception):
    """An input that is dropped, with one of `REASONS`."""

    def __init__(self, reason, detail=""):
        # Object reprs ("<_io.BytesIO object at 0x7f...>") would make dataset.json differ
        # between identical runs.
        detail = re.sub(r" at 0x[0-9a-fA-F]+", "", str(detail))
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def open_image(data, max_pixels):
    """Decodes encoded image bytes into a loaded PIL image, or raises `Skip`.

    The size is checked from the header before any pixel is decoded, so a decompression
    bomb (a tiny file that inflates to billions of pixels) never allocates its pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Sizes are checked against max_pixels below; Pillow's own warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise Skip(DECOMPRESSION_BOMB, str(e)) from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise Skip(UNREADABLE, f"{type(e).__name__}: {e}") from e
    w, h = im.size
    if w * h > max_pixels:
        raise Skip(DECOMPRESSION_BOMB, f"{w}x{h} = {w * h} pixels > max_pixels={max_pixels}")
    try:
        im.seek(0)
        im.load()
        im = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as e:
        raise Skip(DECOMPRESSION_BOMB, str(e)) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # The header parsed, the pixel data did not: a cut-off or damaged file.
        raise Skip(TRUNCATED, f"{type(e).__name__}: {e}") from e
    return im


def to_mode(im, color_mode):
    """Converts to `"L"` (grayscale) or `"RGB"`; alpha is composited over white."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    if color_mode == "grayscale":
        return im.convert("L")
    return im.convert("RGB")


def fit_size(im, size, resize="crop"):
    """Resizes a PIL image to `size` x `size`.

    `"crop"` scales the shorter side to `size` and center-crops the longer one; `"pad"`
    scales the longer side to `size` and pads the shorter one with black, centered.
    """
    from PIL import Image

    w, h = im.size
    if (w, h) == (size, size):
        return im
    if resize == "crop":
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
        left, top = (nw - size) // 2, (nh - size) // 2
        return im.crop((left, top, left + size, top + size))
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    canvas = Image.new(im.mode, (size, size))
    canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
    return canvas


def pixel_hash(pixels):
    """sha256 hex of the decoded pixels and their shape (the exact-duplicate key)."""
    h = hashlib.sha256(str(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def _dct_matrix(n):
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def phash(pixels):
    """64-bit DCT perceptual hash (pHash) of a uint8 `(H, W, C)` image, as a Python int.

    Grayscale, 32x32 area resize, 2-D DCT-II, the 8x8 lowest frequencies, each bit set
    where the coefficient exceeds their median (the DC term excluded from the median).

    Reference:
        - [Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions",
          2010](https://www.phash.org/docs/pubs/thesis_zauner.pdf)
    """
    from PIL import Image

    gray = pixels[..., 0] if pixels.shape[-1] == 1 else pixels.mean(axis=-1)
    small = Image.fromarray(gray.astype(np.float32), mode="F").resize((32, 32), Image.BOX)
    a = np.asarray(small, np.float64)
    coeffs = (_DCT32 @ a @ _DCT32.T)[:8, :8].reshape(-1)
    median = np.median(coeffs[1:])
    bits = coeffs > median
    return int(np.packbits(bits.astype(np.uint8)).view(">u8")[0])


def encode(pixels, image_format, jpeg_quality=95):
    """Encodes a uint8 `(H, W, C)` array as PNG or JPEG bytes, or raw bytes."""
    if image_format == "raw":
        return np.ascontiguousarray(pixels, np.uint8).tobytes()
    from PIL import Image

    im = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    buf = io.BytesIO()
    if image_format == "png":
        im.save(buf, format="PNG", optimize=False, compress_level=6)
    else:
        im.save(buf, format="JPEG", quality=int(jpeg_quality), subsampling=0)
    return buf.getvalue()


def process_pil(im, params):
    """Validated PIL image -> uint8 `(size, size, C)` array, or raises `Skip`."""
    w, h = im.size
    if min(w, h) < params["min_size"]:
        raise Skip(TOO_SMALL, f"{w}x{h} < min_size={params['min_size']}")
    im = to_mode(im, params["color_mode"])
    if params["image_size"]:
        im = fit_size(im, params["image_size"], params["resize"])
    arr = np.asarray(im, np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def process_array(arr, params):
    """A uint8 `(H, W)`/`(H, W, C)` array from an array source -> processed array."""
    from PIL import Image

    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    mode = "L" if arr.ndim == 2 else {3: "RGB", 4: "RGBA"}.get(arr.shape[-1])
    if mode is None:
        raise Skip(UNREADABLE, f"array of shape {arr.shape} is not an image")
    color_mode = params["color_mode"]
    if color_mode == "auto":
        color_mode = "grayscale" if mode == "L" else "rgb"
    return process_pil(Image.fromarray(arr.astype(np.uint8), mode=mode),
                       dict(params, color_mode=color_mode))


def record(item_id, label, pixels, params):
    """The row that flows through the Spark job for one valid image."""
    return {
        "id": item_id,
        "label": int(label),
        "sha": pixel_hash(pixels),
        "phash": phash(pixels),
        "image": encode(pixels, params["image_format"], params["jpeg_quality"]),
        "shape": tuple(int(d) for d in pixels.shape),
    }


def split_of(cluster_hash, validation_fraction, test_fraction):
    """The split of a cluster, a pure function of its hash (stable when data is added).

    The first 8 bytes of sha256(cluster_hash) as a fraction u in [0, 1): test when
    u < test_fraction, validation when u < test_fraction + validation_fraction, else train.
    """
    digest = hashlib.sha256(("split:" + cluster_hash).encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + validation_fraction:
        return "validation"
    return "train"


def shard_of(sha, num_shards):
    """Shard index of an image within its split (uniform over sha256 prefixes)."""
    return int(sha[:15], 16) % num_shards

"""An invisible DWT-DCT watermark: a 32-bit payload (e.g. a model id) hidden in the pixels.

The method is the one Stable Diffusion's reference scripts use through the
`invisible-watermark` package (`WatermarkEncoder().encode(img, "dwtDct")`): a one-level Haar
DWT of the image, the low-pass band (cA) cut into 4x4 blocks, a 4x4 DCT of each block, and
one bit per block written by quantising the block's largest AC coefficient (here: the
largest of the three lowest, which survive resizing) to an odd or even
multiple of `scale / 2` (`(|c| // scale + 0.25 + 0.5 * bit) * scale`, sign kept). Reading
takes the remainder of that coefficient modulo `scale` and votes over all blocks of a bit.

Why not `invisible-watermark` itself: it depends on PyTorch (and OpenCV) for its other
methods, far too heavy for this TensorFlow-free runtime and for serving boxes. The dwtDct
method needs only a Haar DWT (PyWavelets) and a 4x4 DCT (a matrix product in numpy), so it
is implemented here in ~150 lines; no maintained PyTorch-free package offers it.

Measured robustness (tests/runtime/provenance/test_watermark.py, benchmarks/RESULTS.md): the
payload survives JPEG quality 75 and a 10% crop exactly; a 0.5x resize and back does NOT
survive (it rescales the coefficients, which moves them across quantisation steps; bit
accuracy near chance), and the reader then reports no payload rather than a wrong one.

Three changes make it survive crops and tell marked from unmarked images:

- bits are laid out as an 8x8 *tile* of blocks (bit `8 * (row % 8) + (col % 8)`) rather
  than one running block count, so a crop only shifts the tile cyclically; the reader
  searches the 8x8 pixel alignments (by vote confidence) and the 64 cyclic tile shifts;
- marking is repeated on the clipped result (black/white areas, e.g. MNIST backgrounds);
- the 64 embedded bits are the 32-bit payload followed by its CRC-32, and the payload is
  reported only when the CRC matches. A random image matches one of the 64 shifts with
  probability about 64 / 2**32, so false positives are essentially impossible; the
  measured rate is in benchmarks/RESULTS.md.

Sizes: every bit needs several blocks for its vote to survive edits. An image needs at least
`MIN_SIDE` = 128 pixels on each side (256 blocks: 4 votes per bit); 256 or more is
recommended. Smaller outputs, such as 28x28 MNIST digits, are too small to carry 64 bits: watermark the
upscaled image instead (`watermark_upscaled`), and say so wherever the images are shown.

Grey images are marked in their single channel; colour (RGB) images in luma (Y of YCbCr),
which JPEG keeps at full resolution.

Reference:
    Shield Mountain, invisible-watermark (the `dwtDct` method), used by
    Stability AI's Stable Diffusion scripts (`scripts/txt2img.py`).
"""

import zlib

import numpy as np

PAYLOAD_BITS = 32
BITS = 64                     # payload + CRC-32
TILE = 8                      # 8 x 8 blocks carry the 64 bits
BLOCK = 4                     # DCT block in the cA band (= 8 x 8 pixels)
MIN_SIDE = 2 * BLOCK * TILE * 2   # 128 px: 16 blocks a side, 4 tiles, 4 votes per bit
DEFAULT_SCALE = 30.0


def _require_pywt():
    try:
        import pywt
    except ImportError as e:
        raise ImportError("The watermark needs PyWavelets: pip install "
                          "\"keras-aigc-runtime[provenance]\" (or pip install PyWavelets).") from e
    return pywt


def _dct_matrix(n=BLOCK):
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_C = _dct_matrix()


def payload_bits(payload):
    """The 64 embedded bits of a 32-bit payload: payload bits then CRC-32 bits (MSB first)."""
    if isinstance(payload, bool) or not isinstance(payload, (int, np.integer)) or not (
            0 <= int(payload) < 2**PAYLOAD_BITS):
        raise ValueError(f"payload must be an int in [0, 2**{PAYLOAD_BITS}), got {payload!r}.")
    data = int(payload).to_bytes(4, "big")
    word = (int(payload) << 32) | zlib.crc32(data)
    return np.array([(word >> (BITS - 1 - i)) & 1 for i in range(BITS)], np.uint8)


def _bits_to_payload(bits):
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    payload, crc = word >> 32, word & 0xFFFFFFFF
    return payload, zlib.crc32(payload.to_bytes(4, "big")) == crc


def _luma(image):
    """float64 (H, W) plane to mark, and a function putting a marked plane back."""
    x = np.asarray(image)
    if x.dtype != np.uint8:
        raise ValueError(f"watermark works on uint8 pixels, got dtype {x.dtype}.")
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        return x.astype(np.float64), lambda y: np.clip(np.rint(y), 0, 255).astype(
            np.uint8).reshape(np.asarray(image).shape)
    if x.ndim == 3 and x.shape[-1] in (3, 4):
        rgb = x[..., :3].astype(np.float64)
        y = rgb @ np.array([0.299, 0.587, 0.114])

        def put_back(new_y):
            out = np.clip(np.rint(rgb + (new_y - y)[..., None]), 0, 255).astype(np.uint8)
            return np.concatenate([out, x[..., 3:]], -1) if x.shape[-1] == 4 else out
        return y, put_back
    raise ValueError(f"watermark needs a (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, "
                     f"got shape {x.shape}.")


def _check_size(h, w):
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"Image {h}x{w} is below the watermark's minimum size of {MIN_SIDE}x{MIN_SIDE} "
            f"pixels; watermark an upscaled copy (watermark_upscaled) instead.")


def _blocks(ca):
    """(rows, cols, 4, 4) DCT coefficients of the 4x4 blocks of `ca`."""
    r, c = ca.shape[0] // BLOCK, ca.shape[1] // BLOCK
    b = ca[:r * BLOCK, :c * BLOCK].reshape(r, BLOCK, c, BLOCK).transpose(0, 2, 1, 3)
    return _C @ b @ _C.T


def _unblocks(coef, ca):
    r, c = coef.shape[:2]
    b = _C.T @ coef @ _C
    out = ca.copy()
    out[:r * BLOCK, :c * BLOCK] = b.transpose(0, 2, 1, 3).reshape(r * BLOCK, c * BLOCK)
    return out


# The lowest AC coefficients of a 4x4 block: (0, 1), (1, 0), (1, 1). invisible-watermark
# picks the largest of all 15 AC coefficients; a 0.5x resize (any low-pass) wipes out the
# upper ones, so the bit goes to the largest of these three.
AC_POSITIONS = np.array([1, 4, 5])


def _max_ac(coef):
    flat = np.abs(coef.reshape(coef.shape[0], coef.shape[1], BLOCK * BLOCK))
    return AC_POSITIONS[np.argmax(flat[..., AC_POSITIONS], axis=-1)]


def embed(image, payload, scale=DEFAULT_SCALE, rounds=3):
    """Returns a copy of uint8 `image` carrying `payload` (an int in [0, 2**32)).

    Args:
        image: uint8 array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), both sides
            >= `MIN_SIDE`.
        payload: int. 32 bits, e.g. a model id (`model_id(...)`).
        scale: float. Quantisation step: larger is more robust and more visible.
            Defaults to `30` (invisible-watermark uses 36 on chroma; 30 on luma keeps
            PSNR above 38 dB on MNIST).
        rounds: int. Marking passes (later passes repair what clipping undid).
            Defaults to `3`.

    Example:

    ```python
    marked = embed(pixels, model_id("dcgan", manifest_sha256))
    found = extract(marked)   # {"detected": True, "payload": ..., ...}
    ```
    """
    _require_pywt()
    plane, put_back = _luma(image)
    _check_size(*plane.shape)
    bits = payload_bits(payload)
    # Pixels clip at 0 and 255, which undoes part of the mark in black or white areas
    # (MNIST's background). Re-marking the clipped result lets those blocks settle on a
    # DC offset that holds the pattern; a few rounds suffice.
    out = np.asarray(image)
    for _ in range(rounds):
        plane, put_back = _luma(out)
        out = put_back(_embed_plane(plane, bits, scale))
    return out


def _embed_plane(plane, bits, scale):
    import pywt

    ca, details = pywt.dwt2(plane, "haar")
    coef = _blocks(ca)
    rows, cols = coef.shape[:2]
    idx = (np.arange(rows)[:, None] % TILE) * TILE + (np.arange(cols)[None, :] % TILE)
    bit = bits[idx].astype(np.float64)
    pos = _max_ac(coef)
    flat = coef.reshape(rows, cols, BLOCK * BLOCK)
    val = np.take_along_axis(flat, pos[..., None], -1)[..., 0]
    mag = (np.abs(val) // scale + 0.25 + 0.5 * bit) * scale
    np.put_along_axis(flat, pos[..., None], (np.where(val >= 0, 1, -1) * mag)[..., None], -1)
    marked = pywt.idwt2((_unblocks(flat.reshape(coef.shape), ca), details), "haar")
    return marked[:plane.shape[0], :plane.shape[1]]


def _votes(ca, scale):
    """Per tile position (8, 8): weighted mean vote in [0, 1] of the blocks of band `ca`."""
    coef = _blocks(ca)
    rows, cols = coef.shape[:2]
    flat = coef.reshape(rows, cols, BLOCK * BLOCK)
    val = np.abs(np.take_along_axis(flat, _max_ac(coef)[..., None], -1)[..., 0])
    vote = ((val % scale) > 0.5 * scale).astype(np.float64)
    # Blocks whose coefficient is below one step (0.25 or 0.75 x scale when marked) keep
    # their bit best when an edit rescales coefficients (JPEG, blur); count them double.
    weight = np.where(val < scale, 2.0, 1.0)
    idx = ((np.arange(rows)[:, None] % TILE) * TILE + np.arange(cols)[None, :] % TILE).ravel()
    sums = np.bincount(idx, (vote * weight).ravel(), TILE * TILE)
    counts = np.bincount(idx, weight.ravel(), TILE * TILE)
    return (sums / np.maximum(counts, 1)).reshape(TILE, TILE)


def extract(image, scale=DEFAULT_SCALE, search=True):
    """Reads the watermark of a uint8 image.

    Args:
        image: uint8 array as for `embed`, any size >= `MIN_SIDE` - 16 (crops are fine).
        scale: float. The `scale` used by `embed`.
        search: bool. Try the 8x8 pixel alignments and 64 tile shifts (survives crops).

    Returns:
        dict: `detected` (bool: the CRC of the payload matched), `payload` (int or
        `None`), `bits` (the 64 bits read at the chosen alignment and shift, uint8),
        `confidence` (mean |vote - 0.5| * 2 in [0, 1]; near 0 on unmarked images),
        `offset` (pixel alignment) and `shift` (tile shift).
    """
    _require_pywt()
    plane, _ = _luma(image)
    if min(plane.shape) < MIN_SIDE - 2 * BLOCK * TILE // 4:
        raise ValueError(f"Image {plane.shape[0]}x{plane.shape[1]} is too small to hold the "
                         f"watermark (minimum {MIN_SIDE}x{MIN_SIDE}).")
    import pywt

    scored = []
    # Pixel alignment (dy, dx) in 0..7: its parity picks the Haar grid, the rest is a
    # shift of whole cA samples (one DWT per parity, not per offset).
    for py, px in ([(a, b) for a in range(2) for b in range(2)] if search else [(0, 0)]):
        ca_full, _ = pywt.dwt2(plane[py:, px:], "haar")
        for sy in (range(BLOCK) if search else [0]):
            for sx in (range(BLOCK) if search else [0]):
                v = _votes(ca_full[sy:, sx:], scale)
                scored.append((float(np.mean(np.abs(v - 0.5)) * 2), py + 2 * sy,
                               px + 2 * sx, v))
    confidence, dy, dx, v = max(scored, key=lambda t: t[0])
    shifts = ([(sr, sc) for sr in range(TILE) for sc in range(TILE)] if search else [(0, 0)])
    for sr, sc in shifts:
        # The block at tile position (r, c) of the crop carries bit ((r + sr) % 8, (c + sc) % 8).
        tile = np.roll(v, (sr, sc), axis=(0, 1))
        bits = (tile.reshape(-1) > 0.5).astype(np.uint8)
        payload, ok = _bits_to_payload(bits)
        if ok:
            return {"detected": True, "payload": payload, "bits": bits,
                    "confidence": confidence, "offset": (dy, dx), "shift": (sr, sc)}
    bits = (v.reshape(-1) > 0.5).astype(np.uint8)
    return {"detected": False, "payload": None, "bits": bits, "confidence": confidence,
            "offset": (dy, dx), "shift": (0, 0), "votes": v}


def model_id(name, sha256):
    """A 32-bit payload identifying a model: the first 8 hex digits of its sha256."""
    del name
    return int(str(sha256)[:8], 16)


def upscale_factor(height, width):
    """The smallest integer factor that brings an image to the minimum size."""
    return max(1, -(-MIN_SIDE // min(int(height), int(width))))


def watermark_upscaled(image, payload, factor=None, scale=DEFAULT_SCALE):
    """Upscales a small image (nearest neighbour) to >= `MIN_SIDE` and watermarks that.

    28x28 MNIST digits are below the minimum size: the watermark lives in the upscaled
    image (e.g. 140x140 for factor 5), not in the 28x28 original.
    """
    x = np.asarray(image)
    factor = upscale_factor(*x.shape[:2]) if factor is None else int(factor)
    big = np.repeat(np.repeat(x, factor, axis=0), factor, axis=1)
    return embed(big, payload, scale=scale)


def mark(image, payload, scale=DEFAULT_SCALE):
    """Watermarks `image` as it is when both sides reach `MIN_SIDE`, else an upscaled copy.

    Returns `(marked uint8 image, factor)`: `factor` is 1, or the nearest-neighbour
    upscaling that small images (a single 28x28 digit, a small grid) needed; then the
    marked image is that much larger than the input.
    """
    x = np.asarray(image)
    factor = upscale_factor(*x.shape[:2])
    if factor == 1:
        return embed(x, payload, scale=scale), 1
    return watermark_upscaled(x, payload, factor=factor, scale=scale), factor


def parse_payload(text):
    """A 32-bit payload from text: decimal or 0x-hex (e.g. `"0xDEADBEEF"`)."""
    try:
        value = int(str(text).strip(), 0)
    except ValueError as e:
        raise ValueError(f"watermark payload {text!r} is not an integer; give 0 to "
                         f"{2**PAYLOAD_BITS - 1} in decimal or 0x-hex (e.g. 0xDEADBEEF).") from e
    if not 0 <= value < 2**PAYLOAD_BITS:
        raise ValueError(f"watermark payload {text!r} is out of range: it must fit in "
                         f"{PAYLOAD_BITS} bits (0 to {2**PAYLOAD_BITS - 1}).")
    return value

"""Byte-level PNG edits for tamper tests: change pixels or the manifest, keep every chunk."""

import zlib

from keras_aigc_runtime.provenance import content_credentials as cc


def rebuild(data, edit):
    """Re-assembles a PNG after `edit(tag, body) -> body` on each chunk (fresh CRCs)."""
    return cc.PNG_SIGNATURE + b"".join(cc._chunk(tag, edit(tag, body))
                                       for tag, body in cc._chunks(data))


def flip_one_pixel(data, index=1):
    """XORs the lowest bit of one pixel byte inside IDAT (index 0 is row 0's filter byte)."""
    def edit(tag, body):
        if tag != b"IDAT":
            return body
        raw = bytearray(zlib.decompress(body))
        raw[index] ^= 1
        return zlib.compress(bytes(raw))
    return rebuild(data, edit)


def change_manifest(data, old, new):
    """Replaces bytes inside the C2PA manifest store chunk (caBX)."""
    assert len(old) == len(new)

    def edit(tag, body):
        if tag != b"caBX":
            return body
        assert old in body, (old, "not in the manifest")
        return body.replace(old, new, 1)
    return rebuild(data, edit)


def pixels(data):
    """uint8 pixels of a PNG."""
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))

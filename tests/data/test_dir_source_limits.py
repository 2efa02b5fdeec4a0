"""Issue 11: `dir:` sources skip and report decompression bombs, oversize images and
symlinks that leave the root; `DatasetInfo.skip_counts` counts every kind."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_aigc import data
from keras_aigc.data.sources import read_source


def _png(path, value, size=(6, 6)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8), "L").save(path)


def _bomb(path, width=20000, height=10000):
    """A few hundred bytes that claim width x height pixels (gray, 8 bit)."""
    def chunk(tag, payload):
        return (struct.pack(">I", len(payload)) + tag + payload
                + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))
    body = (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(body)
    return len(body)


def test_decompression_bomb_is_skipped_and_reported_not_fatal(tmp_path):
    for i in range(4):
        _png(str(tmp_path / "a" / f"{i}.png"), i * 20)
    assert _bomb(str(tmp_path / "a" / "bomb.png")) < 400
    # 161f78a: PIL's DecompressionBombError aborted the whole load.
    with pytest.warns(UserWarning, match=r"bomb.png"):
        _, _, info = data.load_arrays(f"dir:{tmp_path}", "all", test_fraction=0.0,
                                      validation_fraction=0.0)
    assert info.num_examples == 4
    assert len(info.skipped) == 1 and "bomb.png: too large (" in info.skipped[0]
    assert "20000x10000 pixels" in info.skipped[0] or "200000000 pixels" in info.skipped[0]
    assert info.skip_counts == {"unreadable": 0, "too large": 1, "outside the root": 0}


def test_pixel_limit_is_configurable(tmp_path):
    for i in range(3):
        _png(str(tmp_path / f"{i}.png"), i * 20, size=(6, 6))
    _png(str(tmp_path / "big.png"), 7, size=(6, 7))
    with pytest.warns(UserWarning, match=r"big.png"):
        raw = read_source(f"dir:{tmp_path}", max_image_pixels=36)
    assert raw.splits["all"][0].shape == (3, 6, 6, 1)
    assert "big.png: too large (7x6 pixels, over max_image_pixels=36)" in raw.skipped[0]
    with pytest.raises(ValueError, match=r"max_image_pixels must be >= 1"):
        read_source(f"dir:{tmp_path}", max_image_pixels=0)


def test_symlinks_leaving_the_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    for i in range(3):
        _png(str(root / "cats" / f"{i}.png"), i * 30)
        _png(str(outside / "secret" / f"{i}.png"), 200 + i)
    os.symlink(outside / "secret", root / "stolen")  # a class folder pointing outside
    os.symlink(outside / "secret" / "0.png", root / "cats" / "link.png")  # a file outside
    os.symlink(root / "cats" / "0.png", root / "cats" / "inside.png")  # fine: inside
    (root / "cats" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(UserWarning, match=r"outside the root"):
        _, _, info = data.load_arrays(f"dir:{root}", "all", test_fraction=0.0,
                                      validation_fraction=0.0, deduplicate=False)
    # 161f78a read `stolen` as a second class of images from outside the root.
    assert info.class_names == ["cats"]
    assert info.num_examples == 4  # 0, 1, 2 and the inside link
    assert info.skip_counts == {"unreadable": 1, "too large": 0, "outside the root": 2}
    assert any("stolen: outside the root" in s for s in info.skipped)
    assert any("link.png: outside the root" in s for s in info.skipped)

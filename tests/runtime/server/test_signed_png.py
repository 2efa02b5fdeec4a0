"""`keras-aigc-serve --sign DIR`: the PNG route's images carry verifiable Content Credentials."""

import subprocess
import sys

import numpy as np

import keras_aigc_runtime
from keras_aigc_runtime.png import image_grid
from keras_aigc_runtime.provenance import init_test_credentials, read_text_chunks, verify_png
from tests.runtime.conftest import http, runtime_env, serve
from tests.runtime.provenance import png_edit


def test_signed_png_route(dcgan_bundle, conditional_bundle, tmp_path):
    creds = str(tmp_path / "creds")
    init_test_credentials(creds)
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    with serve(dcgan_bundle[1], "--sign", creds) as s:
        status, headers, body = http("GET", s.base + "/v2/models/dcgan/generate.png?n=4&seed=5")
    assert status == 200 and headers["content-type"] == "image/png"
    result = verify_png(body)
    assert result.status == "valid", result.failures
    assert result.claims["seed"] == 5 and result.claims["model"]["name"] == "dcgan"
    assert result.claims["model"]["sha256"] == g.manifest_sha256
    np.testing.assert_array_equal(png_edit.pixels(body), image_grid(g.generate(4, seed=5))[..., 0])
    assert verify_png(png_edit.flip_one_pixel(body)).status == "tampered"
    with serve(conditional_bundle[1], "--sign", creds) as s:
        status, _, body = http("GET", s.base + "/v2/models/toy_cgan/generate.png?n=2&labels=2")
    assert status == 200 and verify_png(body).claims["labels"] == [2, 2]


def test_unsigned_png_route_has_text_chunks(dcgan_bundle):
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    with serve(dcgan_bundle[1]) as s:
        status, _, body = http("GET", s.base + "/v2/models/dcgan/generate.png?n=2&seed=1")
    assert status == 200 and verify_png(body).status == "unsigned"
    text = read_text_chunks(body)
    assert text["seed"] == "1" and text["model_sha256"] == g.manifest_sha256


def test_bad_sign_directory_fails_at_start(dcgan_bundle, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_aigc_runtime.server.main", dcgan_bundle[1], "--sign",
         str(tmp_path / "nope")], capture_output=True, text=True, timeout=120, env=runtime_env())
    assert proc.returncode == 2
    assert "--sign" in proc.stderr and "does not exist" in proc.stderr


def test_watermarked_png_route(dcgan_bundle, tmp_path):
    """`--watermark`: every PNG carries the payload (read back exactly), signed over the mark."""
    from keras_aigc_runtime.provenance import watermark

    creds = str(tmp_path / "creds")
    init_test_credentials(creds)
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    with serve(dcgan_bundle[1], "--watermark", "0xDEADBEEF", "--sign", creds) as s:
        status, _, body = http("GET", s.base + "/v2/models/dcgan/generate.png?n=4&seed=5")
    assert status == 200 and verify_png(body).status == "valid"
    pixels = png_edit.pixels(body)
    plain = image_grid(g.generate(4, seed=5))[..., 0]
    factor = watermark.upscale_factor(*plain.shape)
    assert factor > 1 and pixels.shape == (plain.shape[0] * factor, plain.shape[1] * factor)
    found = watermark.extract(pixels)
    assert found["detected"] and found["payload"] == 0xDEADBEEF
    # The mark is invisible-small: the downscaled picture stays close to the unmarked grid.
    small = pixels[::factor, ::factor].astype(np.float64)
    assert np.sqrt(np.mean((small - plain) ** 2)) < 8.0
    with serve(dcgan_bundle[1], "--watermark", "model") as s:
        status, _, body = http("GET", s.base + "/v2/models/dcgan/generate.png?n=2&seed=1")
    assert status == 200
    assert watermark.extract(png_edit.pixels(body))["payload"] == int(g.manifest_sha256[:8], 16)


def test_unwatermarked_png_route_has_no_mark(dcgan_bundle):
    from keras_aigc_runtime.provenance import watermark

    with serve(dcgan_bundle[1]) as s:
        status, _, body = http("GET", s.base + "/v2/models/dcgan/generate.png?n=16&seed=1&"
                                                "ncols=4")
    pixels = png_edit.pixels(body)
    assert status == 200 and pixels.shape[0] < watermark.MIN_SIDE  # not upscaled
    f = watermark.upscale_factor(*pixels.shape[:2])  # as the server would have upscaled
    big = np.repeat(np.repeat(pixels, f, axis=0), f, axis=1)
    assert not watermark.extract(big)["detected"]


def test_bad_watermark_payload_fails_at_start(dcgan_bundle):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_aigc_runtime.server.main", dcgan_bundle[1],
         "--watermark", "0x1FFFFFFFF"], capture_output=True, text=True, timeout=120,
        env=runtime_env())
    assert proc.returncode == 2
    assert "--watermark" in proc.stderr and "32 bits" in proc.stderr

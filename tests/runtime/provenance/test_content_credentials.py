"""C2PA Content Credentials on runtime PNGs, with a test chain made here."""

import json
import os

import numpy as np
import pytest

import keras_aigc_runtime
from keras_aigc_runtime.png import encode_png, image_grid
from keras_aigc_runtime.provenance import (
    Credentials,
    add_text_chunks,
    generation_claims,
    init_test_credentials,
    read_text_chunks,
    sign_png,
    verify_png,
)
from keras_aigc_runtime.provenance.content_credentials import TRAINED_ALGORITHMIC_MEDIA
from tests.runtime.provenance import png_edit


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    d = tmp_path_factory.mktemp("creds")
    paths = init_test_credentials(str(d))
    return str(d), paths


def _claims(seed=7, labels=(1, 2)):
    return generation_claims("toy", "ab" * 32, seed, list(labels))


def _png():
    return encode_png(np.random.default_rng(0).integers(0, 256, (16, 16, 1), dtype=np.uint8))


def test_credentials_files_and_notice(creds):
    d, paths = creds
    assert sorted(os.listdir(d)) == ["README.txt", "chain.pem", "key.pem", "root.pem"]
    assert os.stat(paths["key"]).st_mode & 0o077 == 0  # private key readable by owner only
    with open(os.path.join(d, "README.txt")) as f:
        assert "NOT trusted" in f.read()
    with open(paths["chain"]) as f:
        assert f.read().count("BEGIN CERTIFICATE") == 2  # signer + intermediate
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        init_test_credentials(d)


def test_signed_png_verifies_with_its_claims(creds):
    d, paths = creds
    original = _png()
    signed = sign_png(original, _claims(), d)
    result = verify_png(signed)
    assert result.status == "valid" and result.ok and result.failures == []
    assert result.trusted is None  # no trust list given: not checked
    assert result.source_type == TRAINED_ALGORITHMIC_MEDIA
    claims = result.claims
    assert claims["seed"] == 7 and claims["labels"] == [1, 2]
    assert claims["model"] == {"name": "toy", "sha256": "ab" * 32, "sha256_of": "manifest.json"}
    assert claims["generator"] == {"name": "keras-aigc",
                                   "version": keras_aigc_runtime.__version__}
    assert claims["created"].endswith("+00:00")
    # The pixels are untouched by signing.
    np.testing.assert_array_equal(png_edit.pixels(signed), png_edit.pixels(original))


def test_trust_anchor_decides_trust(creds, tmp_path):
    d, paths = creds
    signed = sign_png(_png(), _claims(), d)
    with open(paths["root"]) as f:
        assert verify_png(signed, trust_anchors=f.read()).trusted is True
    other = init_test_credentials(str(tmp_path / "other"))
    with open(other["root"]) as f:
        result = verify_png(signed, trust_anchors=f.read())
    assert result.status == "valid" and result.trusted is False and not result.ok


def test_one_flipped_pixel_is_tampered(creds):
    signed = sign_png(_png(), _claims(), creds[0])
    edited = png_edit.flip_one_pixel(signed)
    assert (png_edit.pixels(edited) != png_edit.pixels(signed)).sum() == 1
    result = verify_png(edited)
    assert result.status == "tampered" and not result.ok
    assert any("dataHash.mismatch" in f for f in result.failures), result.failures


def test_changed_manifest_is_tampered(creds):
    signed = sign_png(_png(), _claims(), creds[0])
    edited = png_edit.change_manifest(signed, b"manifest.json", b"manifest.jsoN")
    result = verify_png(edited)
    assert result.status == "tampered"
    assert any("org.keras-aigc.generation" in f for f in result.failures), result.failures


def test_unsigned_png_and_text_chunks(creds):
    assert verify_png(_png()).status == "unsigned"
    labelled = add_text_chunks(_png(), _claims(seed=3))
    result = verify_png(labelled)
    assert result.status == "unsigned" and not result.ok
    text = read_text_chunks(labelled)
    assert text["model_sha256"] == "ab" * 32 and text["seed"] == "3"
    assert text["generator"] == f"keras-aigc {keras_aigc_runtime.__version__}"
    np.testing.assert_array_equal(png_edit.pixels(labelled), png_edit.pixels(_png()))


def test_generator_save_png_signed_and_unsigned(dcgan_bundle, conditional_bundle, creds,
                                                tmp_path):
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    path = str(tmp_path / "signed.png")
    pixels = g.save_png(path, 4, seed=5, sign=creds[0])
    np.testing.assert_array_equal(pixels, g.generate(4, seed=5))
    with open(path, "rb") as f:
        data = f.read()
    np.testing.assert_array_equal(png_edit.pixels(data), image_grid(pixels)[..., 0])
    result = verify_png(path)
    assert result.status == "valid" and result.claims["seed"] == 5
    assert result.claims["model"]["name"] == g.name == "dcgan"
    with open(os.path.join(dcgan_bundle[1], "manifest.json"), "rb") as f:
        import hashlib

        assert result.claims["model"]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert result.claims["labels"] is None
    plain = str(tmp_path / "plain.png")
    g.save_png(plain, 2, seed=1)
    with open(plain, "rb") as f:
        assert read_text_chunks(f.read())["model_sha256"] == g.manifest_sha256
    # Conditional model: the labels that produced the image are in the claims.
    c = keras_aigc_runtime.load(conditional_bundle[1])
    c.save_png(str(tmp_path / "c.png"), 3, seed=2, labels=[2, 0, 1], sign=Credentials(creds[0]))
    assert verify_png(str(tmp_path / "c.png")).claims["labels"] == [2, 0, 1]


def test_bad_credentials_and_inputs(tmp_path, creds):
    with pytest.raises(FileNotFoundError, match="credentials init"):
        Credentials(str(tmp_path / "missing"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(FileNotFoundError, match=r"lacks \['chain.pem'\]"):
        Credentials(str(tmp_path / "half"))
    with pytest.raises(ValueError, match="Not a PNG"):
        verify_png(b"GIF89a....")
    with pytest.raises(ValueError, match="sign must be None, a credentials directory"):
        sign_png(_png(), _claims(), 3)
    with pytest.raises(ValueError, match="days must be a positive integer"):
        init_test_credentials(str(tmp_path / "x"), days=0)
    assert json.dumps(verify_png(_png()).to_dict())


def test_generator_save_png_watermark_is_read_back(dcgan_bundle, creds, tmp_path):
    from keras_aigc_runtime.provenance import watermark

    g = keras_aigc_runtime.load(dcgan_bundle[1])
    path = str(tmp_path / "marked.png")
    g.save_png(path, 4, seed=5, sign=creds[0], watermark=0xC0FFEE)
    with open(path, "rb") as f:
        data = f.read()
    marked = png_edit.pixels(data)
    assert min(marked.shape[:2]) >= watermark.MIN_SIDE  # small grids are marked upscaled
    found = watermark.extract(marked)
    assert found["detected"] and found["payload"] == 0xC0FFEE
    assert verify_png(path).status == "valid"  # signed after marking
    with pytest.raises(ValueError, match="out of range"):
        g.save_png(str(tmp_path / "bad.png"), 1, watermark="0x100000000")
    assert not os.path.exists(tmp_path / "bad.png")

"""`keras-aigc credentials init`, `sample --sign` and `verify-image`."""

import hashlib

import numpy as np
import pytest

import keras_aigc as ka
from keras_aigc.cli.main import main
from tests.runtime.provenance import png_edit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                          kernel_size=3, name="tiny_dcgan")
    gan.save(str(run / "model.keras"))
    return run


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    d = tmp_path_factory.mktemp("c") / "creds"
    assert main(["credentials", "init", str(d)]) == 0
    return d


def test_credentials_init_says_it_is_untrusted(tmp_path, capsys):
    assert main(["credentials", "init", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "NOT trusted" in err and "LOCAL TEST" in err
    assert main(["credentials", "init", str(tmp_path / "c")]) == 2  # exists, no --force
    assert "--force" in capsys.readouterr().err
    assert main(["credentials", "init", str(tmp_path / "c"), "--force"]) == 0


def test_sample_sign_verify_and_tamper(run_dir, creds, tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["sample", str(run_dir), "--num", "4", "--seed", "9", "--output", str(png),
                 "--sign", str(creds)]) == 0
    capsys.readouterr()
    assert main(["verify-image", str(png), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "valid" and report["claims"]["seed"] == 9
    model_sha = hashlib.sha256((run_dir / "model.keras").read_bytes()).hexdigest()
    assert report["claims"]["model"] == {"name": "tiny_dcgan", "sha256": model_sha,
                                         "sha256_of": "model.keras"}
    assert report["claims"]["generator"]["version"] == ka.__version__
    # Trusting the test root: still 0; trusting another root: 1.
    assert main(["verify-image", str(png), "--trust", str(creds / "root.pem")]) == 0
    assert "signer trusted" in capsys.readouterr().out
    tampered = tmp_path / "t.png"
    tampered.write_bytes(png_edit.flip_one_pixel(png.read_bytes()))
    unsigned = tmp_path / "u.png"
    assert main(["sample", str(run_dir), "--num", "2", "--output", str(unsigned)]) == 0
    capsys.readouterr()
    assert main(["verify-image", str(png), str(tampered), str(unsigned)]) == 1
    out = capsys.readouterr().out
    assert f"{png}: valid" in out and f"{tampered}: tampered" in out
    assert f"{unsigned}: unsigned" in out and "prove nothing" in out
    assert "dataHash.mismatch" in out


def test_bad_inputs(run_dir, tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["sample", str(run_dir), "--output", str(out), "--sign",
                 str(tmp_path / "none")]) == 2
    assert "credentials init" in capsys.readouterr().err and not out.exists()
    (tmp_path / "not.png").write_bytes(b"hello")
    assert main(["verify-image", str(tmp_path / "not.png"), str(tmp_path / "gone.png")]) == 1
    text = capsys.readouterr().out
    assert "Not a PNG" in text and "No such file" in text


def test_sample_unsigned_png_pixels_unchanged(run_dir, tmp_path):
    from PIL import Image

    png = tmp_path / "u.png"
    assert main(["sample", str(run_dir), "--num", "4", "--output", str(png)]) == 0
    from keras_aigc_runtime.provenance import read_text_chunks

    assert read_text_chunks(png.read_bytes())["seed"] == "0"
    # The same grid as without provenance: 2x2 images of 8 px, 2 px padding, upscaled 2x.
    assert np.asarray(Image.open(png)).shape == (2 * (2 * 8 + 3 * 2),) * 2


def test_detect_watermark_cli(tmp_path, capsys):
    from PIL import Image

    from keras_aigc_runtime.provenance import watermark

    digit = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    Image.fromarray(watermark.watermark_upscaled(digit, 0xBEEF)).save(tmp_path / "m.png")
    Image.fromarray(np.repeat(np.repeat(digit, 5, 0), 5, 1)).save(tmp_path / "plain.png")
    assert main(["detect-watermark", str(tmp_path / "m.png"), "--payload", "0xbeef"]) == 0
    assert "payload 48879 (0x0000beef)" in capsys.readouterr().out
    assert main(["detect-watermark", str(tmp_path / "m.png"), "--payload", "1"]) == 1
    assert main(["detect-watermark", str(tmp_path / "plain.png"),
                 str(tmp_path / "missing.png")]) == 1
    out = capsys.readouterr().out
    assert "no watermark found" in out and "missing.png: error" in out


def test_sample_watermark_is_read_back_by_detect_watermark(run_dir, creds, tmp_path, capsys):
    import json

    from PIL import Image

    png = tmp_path / "w.png"
    # 4 images of 8x8: a 44 px grid, below the watermark's 128 px minimum, so it is marked
    # upscaled (3x, 132 px), as 28x28 MNIST digits are.
    assert main(["sample", str(run_dir), "--num", "4", "--output", str(png),
                 "--watermark", "0xBEEF", "--sign", str(creds)]) == 0
    assert "watermark payload 0x0000beef, upscaled 3x to 132x132" in capsys.readouterr().out
    assert np.asarray(Image.open(png)).shape == (132, 132)
    assert main(["detect-watermark", str(png), "--payload", "0xbeef", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["payload"] == 0xBEEF
    # Signed after marking: the manifest covers the watermarked pixels.
    assert main(["verify-image", str(png)]) == 0
    capsys.readouterr()
    by_model = tmp_path / "m.png"
    assert main(["sample", str(run_dir), "--num", "4", "--output", str(by_model),
                 "--watermark", "model"]) == 0
    capsys.readouterr()
    sha = hashlib.sha256((run_dir / "model.keras").read_bytes()).hexdigest()
    assert main(["detect-watermark", str(by_model), "--payload", f"0x{sha[:8]}"]) == 0


@pytest.mark.parametrize("payload,message", [
    ("0x1FFFFFFFF", "--watermark: watermark payload '0x1FFFFFFFF' is out of range"),
    ("beef", "--watermark: watermark payload 'beef' is not an integer"),
])
def test_sample_bad_watermark_payload(run_dir, tmp_path, capsys, payload, message):
    out = tmp_path / "x.png"
    assert main(["sample", str(run_dir), "--output", str(out), "--watermark", payload]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_sample_watermark_on_mnist_sized_digit(tmp_path, capsys):
    # A 28x28 digit model writing one image (a 64 px grid): marked at 2x upscale (128 px).
    run = tmp_path / "run"
    run.mkdir()
    gan = ka.models.GAN.from_preset("mlp_mnist")
    gan.save(str(run / "model.keras"))
    png = tmp_path / "d.png"
    assert main(["sample", str(run), "--num", "1", "--output", str(png), "--watermark",
                 "12345"]) == 0
    assert "upscaled 2x to 128x128" in capsys.readouterr().out
    assert main(["detect-watermark", str(png), "--payload", "12345"]) == 0

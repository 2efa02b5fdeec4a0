import os

import keras
import numpy as np
import pytest

from keras_aigc.cli.main import main
from keras_aigc.export import load_manifest
from keras_aigc.models import DCGAN, GAN


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                  kernel_size=3, name="cli_dcgan")
    model.build()
    path = tmp_path_factory.mktemp("run")
    model.save(str(path / "model.keras"))
    return str(path), model


def test_export_run_dir(run_dir, capsys):
    path, model = run_dir
    out = os.path.join(path, "new", "parents", "bundle")  # missing parents are created
    assert main(["export", path, "--formats", "onnx", "--output", out]) == 0
    manifest = load_manifest(out)
    assert manifest["name"] == "cli_dcgan"
    printed = capsys.readouterr().out
    assert "model.onnx" in printed
    # The served model name and the exact command that serves this bundle.
    assert "Served model name: cli_dcgan" in printed
    assert f"keras-aigc-serve {os.path.abspath(out)}" in printed
    assert "--host 0.0.0.0" in printed
    # The loaded model exported the saved weights: compare with the original model.
    import onnxruntime as ort

    z = np.random.default_rng().standard_normal((3, 4)).astype(np.float32)
    got = ort.InferenceSession(os.path.join(out, "model.onnx")).run(None, {"z": z})[0]
    np.testing.assert_allclose(got, model.generator(z).numpy(), atol=1e-5)
    # Exists now: refused without --overwrite, replaced with it.
    assert main(["export", path, "--formats", "onnx", "--output", out]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", os.path.join(path, "model.keras"), "--formats", "onnx",
                 "--output", out, "--overwrite"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["--formats", "coreml"], "Unrecognized formats 'coreml'"),
    (["--quantize", "int4"], "Unrecognized quantize 'int4'"),
    (["--batch-sizes", "0"], "batch_sizes must be"),
    (["--onnx-quantize", "int4"], "Unrecognized onnx_quantize 'int4'"),
    (["--formats", "tflite", "--onnx-quantize", "int8"], "applies to ONNX files"),
])
def test_bad_arguments(run_dir, tmp_path, capsys, argv, message):
    path, _ = run_dir
    assert main(["export", path, "--output", str(tmp_path / "b")] + argv) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "b")


def test_missing_model(tmp_path, capsys):
    assert main(["export", str(tmp_path)]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.keras")]) == 2
    assert "neither a run directory nor a .keras file" in capsys.readouterr().err


def test_unsafe_model_is_not_loaded(tmp_path, capsys):
    # A Lambda layer is arbitrary code: safe_mode refuses to deserialize it.
    z = keras.Input((4,))
    gen = keras.Model(z, keras.layers.Lambda(lambda t: t * 2.0)(
        keras.layers.Reshape((2, 2, 1))(z)))
    disc = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(1)])
    GAN(gen, disc, latent_dim=4).save(str(tmp_path / "m.keras"))
    assert main(["export", str(tmp_path / "m.keras"), "--output", str(tmp_path / "b")]) == 2
    assert "safe_mode" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "b")


def _ed25519_pem(tmp_path, name):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    priv, pub = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(priv), str(pub)


def test_signed_export_through_a_symlinked_output_leaves_nothing_behind(run_dir, tmp_path,
                                                                         capsys):
    import keras_aigc_runtime

    path, _ = run_dir
    priv, pub = _ed25519_pem(tmp_path, "signing")
    _, other_pub = _ed25519_pem(tmp_path, "other")
    parent = tmp_path / "out"
    parent.mkdir()
    real = parent / "real_bundle"
    link = parent / "bundle"
    assert main(["export", path, "--formats", "onnx", "--output", str(real)]) == 0
    os.symlink(real, link)
    for _ in range(2):  # overwrite through the link, twice
        assert main(["export", path, "--formats", "onnx", "--output", str(link),
                     "--sign-key", priv, "--overwrite"]) == 0, capsys.readouterr().err
        # 161f78a left a `.bundle.old-*` symlink here and replaced the link by a directory.
        assert sorted(os.listdir(parent)) == ["bundle", "real_bundle"]
        assert os.path.islink(link) and os.path.isfile(real / "manifest.json.sig")
    g = keras_aigc_runtime.load(str(link), public_key=pub)
    assert g.generate(2, seed=0).shape == (2, 8, 8, 1)
    with pytest.raises(ValueError, match=r"does not verify"):
        keras_aigc_runtime.load(str(link), public_key=other_pub)
    assert main(["export", path, "--formats", "onnx", "--output", str(tmp_path / "x"),
                 "--sign-key", str(tmp_path / "missing.pem")]) == 2
    assert "Cannot read the signing key" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


def test_refusals_name_the_model_the_format_and_the_reason(tmp_path, capsys):
    from keras_aigc.models import PixelCNN

    PixelCNN((2, 2, 1), filters=4, num_layers=1, first_kernel_size=3).save(
        str(tmp_path / "p.keras"))
    out = tmp_path / "out" / "b"
    assert main(["export", str(tmp_path / "p.keras"), "--output", str(out),
                 "--formats", "triton"]) == 2
    assert "PixelCNN cannot be exported to format 'triton': Triton's configuration" in \
        capsys.readouterr().err
    assert main(["export", str(tmp_path / "p.keras"), "--output", str(out),
                 "--formats", "tflite", "--quantize", "int8"]) == 2
    assert "PixelCNN cannot be exported with quantized variants ['int8']" in \
        capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_export_without_formats_writes_the_models_default_formats(run_dir, tmp_path):
    path, model = run_dir
    assert main(["export", path, "--output", str(tmp_path / "b")]) == 0
    manifest = load_manifest(str(tmp_path / "b"))
    from keras_aigc.export import default_formats

    assert default_formats(model) == ("saved_model", "tflite", "onnx")
    assert {f["format"] for f in manifest["files"]} == set(default_formats(model))

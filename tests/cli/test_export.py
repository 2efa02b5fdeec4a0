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

import keras
import numpy as np
import pytest
from PIL import Image

import keras_aigc as ka
from keras_aigc.cli.main import main
from keras_aigc.utils import make_grid, to_uint8


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    gan = ka.models.DCGAN(image_shape=(8, 8, 1), latent_dim=4, g_filters=(4, 4), d_filters=(4,),
                          kernel_size=3)
    gan.save(str(run / "model.keras"))
    return run


def test_sample_grid_and_npy_match_generate(run_dir, tmp_path):
    png, npy = tmp_path / "g.png", tmp_path / "g.npy"
    assert main(["sample", str(run_dir), "--num-samples", "4", "--seed", "9", "--output", str(png),
                 "--npy", str(npy)]) == 0
    expected = to_uint8(keras.models.load_model(str(run_dir / "model.keras")).generate(4, seed=9))
    np.testing.assert_array_equal(np.load(npy), expected)
    grid = np.asarray(Image.open(png))[::2, ::2]
    np.testing.assert_array_equal(grid, make_grid(expected, rows=2)[..., 0])


def test_sample_default_output_in_run_dir(run_dir):
    assert main(["sample", str(run_dir), "--num", "2"]) == 0
    assert (run_dir / "samples" / "sample_seed0.png").is_file()


@pytest.mark.parametrize("args,match", [
    (["--num", "0"], "--num-samples must be a positive integer"),
    (["--num-samples", "0"], "--num-samples must be a positive integer"),
    (["--labels", "a,b"], "--labels must be comma-separated integers"),
])
def test_bad_flags(run_dir, capsys, args, match):
    assert main(["sample", str(run_dir), *args]) == 2
    assert match in capsys.readouterr().err


def test_missing_model(tmp_path, capsys):
    assert main(["sample", str(tmp_path)]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "x.keras")]) == 2
    assert "neither a run directory nor a .keras file" in capsys.readouterr().err

"""`keras-aigc publish`: a run directory (or a config, with --train) -> a preset."""

import json
import os

import keras
import numpy as np
import pytest
import yaml

import keras_aigc as ka
from keras_aigc.cli.main import main
from keras_aigc.metrics.features import domain_features as df
from keras_aigc.models import preset as preset_lib

CONFIG = {
    "model": {"name": "DCGAN", "latent_dim": 8, "g_filters": [8, 4], "d_filters": [4],
              "kernel_size": 3},
    "data": {"source": "digits", "image_size": [8, 8], "batch_size": 32},
    "training": {"epochs": 1, "steps_per_epoch": 2, "num_samples": 4, "validation": False,
                 "backup_freq": None, "fid_features": "off"},
}
METRICS = {"model": "DCGAN", "kind": "gan", "run_dir": "/somewhere", "fid": 31.5,
           "kid": 0.0123, "precision": 0.61, "recall": 0.47, "num_real": 179,
           "num_generated": 1000, "features": "domain_classifier(test)", "wall_time_s": 12.5}


def _write(tmp_path, config):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("publish")
    run = tmp / "run"
    assert main(["train", _write(tmp, CONFIG), "--output", str(run)]) == 0
    return run


def test_publish_run_dir_round_trips_with_card(run_dir, tmp_path, capsys):
    (run_dir / "metrics.json").write_text(json.dumps(METRICS))
    try:
        dest = tmp_path / "preset"
        assert main(["publish", str(run_dir), str(dest), "--license", "MIT"]) == 0
    finally:
        (run_dir / "metrics.json").unlink()
    assert f"Preset: {dest}" in capsys.readouterr().out
    trained = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    loaded = ka.models.DCGAN.from_preset(str(dest))
    np.testing.assert_array_equal(loaded.generate(5, seed=11), trained.generate(5, seed=11))
    card = (dest / "README.md").read_text()
    digits = preset_lib.data_fingerprint("digits", image_size=[8, 8])
    for text in ("| FID | 31.5 |", "| KID | 0.0123 |", "| Precision | 0.61 |",
                 "| Recall | 0.47 |", "domain_classifier(test)", digits["sha256"],
                 "- steps: `2`", "- epochs: `1`", "wall time:", "MIT",
                 "DCGAN trained with keras-aigc on digits.",
                 "from_preset(\"hf://USER/preset\")  # or its local directory"):
        assert text in card, text
    meta = preset_lib.read_metadata(str(dest))
    assert "run_dir" not in meta["metrics"]
    assert meta["metrics"]["evaluation_wall_time_s"] == 12.5  # not the training time
    assert meta["training"]["steps"] == 2


def test_publish_without_metrics_says_how_to_get_them(run_dir, tmp_path, capsys):
    assert main(["publish", str(run_dir), str(tmp_path / "p")]) == 0
    assert f"run `keras-aigc evaluate {run_dir}` first" in capsys.readouterr().out
    assert "- not measured" in (tmp_path / "p" / "README.md").read_text()


def test_publish_errors_are_clear(run_dir, tmp_path, capsys):
    assert main(["publish", str(tmp_path / "missing"), str(tmp_path / "p")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    assert main(["publish", str(run_dir), str(tmp_path / "taken")]) == 2
    assert "already exists; pass overwrite=True (--overwrite)" in capsys.readouterr().err
    assert os.listdir(tmp_path / "taken") == []
    assert main(["publish", str(run_dir), str(tmp_path / "p"), "--metrics",
                 str(tmp_path / "nope.json")]) == 2
    assert "--metrics: no such file" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"fid": 3.0}))
    assert main(["publish", str(run_dir), str(tmp_path / "p"), "--metrics", str(bad)]) == 2
    assert "does not name the network" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == []


def test_publish_train_is_one_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "empty-cache"))
    # No features at all: neither a domain classifier nor the standard FID network's weights.
    monkeypatch.delenv("KERAS_AIGC_FID_WEIGHTS", raising=False)
    dest = tmp_path / "presets" / "tiny"
    rc = main(["publish", "--train", _write(tmp_path, CONFIG), str(dest), "--run-dir",
               str(tmp_path / "run")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Not evaluated" in out and "keras-aigc train-features" in out
    model = ka.models.from_preset(str(dest))
    trained = keras.models.load_model(str(tmp_path / "run" / "model.keras"))
    np.testing.assert_array_equal(model.generate(3, seed=1), trained.generate(3, seed=1))

"""`keras-aigc train` logs what you can watch: sample images, FID, hparams (read back with
TensorBoard's own event reader)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import yaml
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata as hp_metadata

from keras_aigc.cli.main import main
from keras_aigc.metrics.features import domain_features as df
from keras_aigc.metrics.features import train_domain_classifier

CONFIG = {
    "model": {"name": "DCGAN", "latent_dim": 8, "g_filters": [8, 4], "d_filters": [4],
              "kernel_size": 3},
    "data": {"source": "digits", "image_size": [8, 8], "batch_size": 32},
    "training": {"epochs": 2, "steps_per_epoch": 2, "num_samples": 4, "sample_every": 1,
                 "fid_every": 2, "fid_samples": 300, "validation": False,
                 "backup_freq": None},
}


def _write(tmp_path, config):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _load(directory):
    acc = ea.EventAccumulator(directory, size_guidance={ea.TENSORS: 0})
    acc.Reload()
    return acc


def _values(acc, tag):
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


@pytest.fixture
def digits_classifier(tmp_path, monkeypatch):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "cache"))
    train_domain_classifier("digits", epochs=1, image_size=[8, 8])


@pytest.mark.slow
def test_event_files_hold_samples_fid_and_hparams(tmp_path, digits_classifier, capsys):
    run = tmp_path / "run"
    assert main(["train", _write(tmp_path, CONFIG), "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert "FID: every 2 epoch(s), 300 samples" in out
    logs = os.path.join(run, "logs")

    samples = _load(os.path.join(logs, "samples"))
    assert "samples" in samples.Tags()["tensors"]
    events = samples.Tensors("samples")
    assert [e.step for e in events] == [0, 1]
    # tf.summary.image stores [width, height, PNG...]; the PNG is the 2x2 grid of 8x8
    # digits, upscaled (nearest) to cells of 64 pixels.
    width, height, png = tf.make_ndarray(events[-1].tensor_proto)
    image = tf.io.decode_png(png).numpy()
    assert image.shape == (int(height), int(width), 1)
    assert image.shape[0] == (2 * 8 + 3 * 2) * 8
    # With each grid, the latent interpolation strip (training.interpolation_rows=4 rows of
    # interpolation_steps=8 slerp steps by default).
    strips = samples.Tensors("interpolation")
    assert [e.step for e in strips] == [0, 1]
    strip = tf.io.decode_png(tf.make_ndarray(strips[-1].tensor_proto)[2]).numpy()
    assert strip.shape[:2] == ((4 * 10 + 2) * 8, (8 * 10 + 2) * 8)

    train = _load(os.path.join(logs, "train"))
    fid = _values(train, "epoch_fid")
    assert [s for s, _ in fid] == [1]  # measured on the 2nd epoch only (fid_every: 2)
    assert np.isfinite(fid[0][1]) and fid[0][1] > 0
    with open(os.path.join(run, "history.json")) as f:
        assert json.load(f)["fid"] == [pytest.approx(fid[0][1], rel=1e-6)]

    root = _load(logs)
    content = root.PluginTagToContent(hp_metadata.PLUGIN_NAME)
    start = hp_metadata.parse_session_start_info_plugin_data(
        content[hp_metadata.SESSION_START_INFO_TAG])
    hparams = {k: v.ListFields()[0][1] for k, v in start.hparams.items()}
    assert hparams["model.name"] == "DCGAN"
    assert hparams["model.latent_dim"] == 8
    assert hparams["data.image_size"] == "[8, 8]"
    assert hparams["training.fid_every"] == 2
    experiment = hp_metadata.parse_experiment_plugin_data(
        content[hp_metadata.EXPERIMENT_TAG])
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"final/fid", "final/d_loss", "final/g_loss"} <= metric_tags
    assert _values(root, "final/fid") == [(1, pytest.approx(fid[0][1], rel=1e-6))]

    with open(os.path.join(run, "training.json")) as f:
        summary = json.load(f)
    assert summary["epochs"] == 2 and summary["steps"] == 4
    assert summary["wall_time_s"] > 0
    assert summary["final_metrics"]["fid"] == pytest.approx(fid[0][1], rel=1e-6)


def test_fid_is_off_with_a_note_when_no_features(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "empty-cache"))
    config = json.loads(json.dumps(CONFIG))
    config["training"].update(epochs=1, fid_every=1)
    run = tmp_path / "run"
    assert main(["train", _write(tmp_path, config), "--output", str(run)]) == 0
    out = capsys.readouterr().out
    assert "FID: off (no domain classifier for 'digits'" in out
    assert "keras-aigc train-features" in out
    with open(os.path.join(run, "history.json")) as f:
        assert "fid" not in json.load(f)


@pytest.mark.parametrize("key,value,message", [
    ("fid_features", "inception", "training.fid_features: unknown value 'inception'"),
    ("fid_every", -1, "training.fid_every: expected an integer >= 0"),
    ("fid_samples", 1, "training.fid_samples: expected an integer >= 2"),
])
def test_bad_monitoring_values_fail_before_training(tmp_path, capsys, key, value, message):
    config = json.loads(json.dumps(CONFIG))
    config["training"][key] = value
    run = tmp_path / "run"
    assert main(["train", _write(tmp_path, config), "--output", str(run)]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.slow
def test_too_few_fid_samples_is_an_error(tmp_path, digits_classifier, capsys):
    config = json.loads(json.dumps(CONFIG))
    config["training"]["fid_samples"] = 40
    assert main(["train", _write(tmp_path, config), "--output", str(tmp_path / "run")]) == 2
    assert ("training.fid_samples: 40 samples do not give a full-rank covariance of the "
            "128-dimensional") in capsys.readouterr().err


def test_domain_fid_without_classifier_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "empty-cache"))
    config = json.loads(json.dumps(CONFIG))
    config["training"]["fid_features"] = "domain"
    assert main(["train", _write(tmp_path, config), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "training.fid_features: 'domain' but there is no domain classifier" in err


def test_fid_off_in_yaml(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "empty-cache"))
    config = json.loads(json.dumps(CONFIG))
    config["training"]["epochs"] = 1
    rc = main(["train", _write(tmp_path, config), "--output", str(tmp_path / "run"),
               "--set", "training.fid_features=off"])  # YAML reads a bare off as false
    assert rc == 0
    assert "FID:" not in capsys.readouterr().out

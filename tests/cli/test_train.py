import json
import os

import keras
import numpy as np
import pytest
import yaml

from keras_aigc.cli import config as config_lib
from keras_aigc.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs")


def _write(tmp_path, config):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


BASE = {
    "model": {"name": "DCGAN", "latent_dim": 8, "g_filters": [8, 8, 4], "d_filters": [4],
              "kernel_size": 3},
    "data": {"source": "digits", "batch_size": 32},
    "training": {"epochs": 1, "steps_per_epoch": 2, "num_samples": 4},
}


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONFIGS)
                                         if not n.startswith("finetune_")))
def test_shipped_configs_validate(name):
    config_lib.load_config(os.path.join(CONFIGS, name))


@pytest.mark.parametrize("mutate,path", [
    (lambda c: c["model"].update(latent_dims=3), "model.latent_dims: unknown key"),
    (lambda c: c["model"].update(latent_dim="big"), "model.latent_dim: expected int"),
    (lambda c: c["data"].update(batchsize=3), "data.batchsize: unknown key"),
    (lambda c: c["data"].update(batch_size=2.5), "data.batch_size: expected int"),
    (lambda c: c["training"].update(epochs="ten"), "training.epochs: expected int"),
    (lambda c: c["training"].update(epoch=3), "training.epoch: unknown key"),
    (lambda c: c["training"].update(interpolation_rows=-1),
     "training.interpolation_rows: expected an integer >= 0"),
    (lambda c: c["training"].update(interpolation_steps=1),
     "training.interpolation_steps: expected an integer >= 2"),
    (lambda c: c["compile"] if False else c.update(compile={"g_opt": "adam"}),
     "compile.g_opt: unknown key"),
    (lambda c: c.update(trainig={}), "trainig: unknown section"),
    (lambda c: c["model"].update(name="BigGAN"), "model.name: unknown model 'BigGAN'"),
    (lambda c: c["model"].update(preset="huge"), "model.preset: unknown preset 'huge'"),
    (lambda c: c["data"].pop("source"), "data.source: missing"),
    (lambda c: c["data"].update(repeat="yes"), "data.repeat: expected bool"),
    (lambda c: c["data"].update(repeat=True),
     "data.repeat: true streams `records:` shards without end, but data.source is 'digits'"),
])
def test_bad_config_fails_before_training_with_dotted_path(tmp_path, capsys, mutate, path):
    config = json.loads(json.dumps(BASE))
    mutate(config)
    out = tmp_path / "run"
    rc = main(["train", _write(tmp_path, config), "--output", str(out)])
    assert rc == 2
    assert path in capsys.readouterr().err
    assert not out.exists()  # nothing was trained or written


def test_bad_set_override(tmp_path, capsys):
    path = _write(tmp_path, BASE)
    assert main(["train", path, "--set", "training.epochs"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["train", path, "--set", "training.epochs=[1"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["train", path, "--set", "model.latent_dim=x"]) == 2
    assert "model.latent_dim: expected int" in capsys.readouterr().err


def test_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "none.yaml")]) == 2
    assert "Config file not found" in capsys.readouterr().err


def test_train_writes_a_complete_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", _write(tmp_path, BASE), "--output", str(out),
               "--set", "training.sample_every=1", "--set", "model.latent_dim=6"])
    assert rc == 0
    for name in ("config.yaml", "model.keras", "history.json", "data_info.json",
                 "samples/epoch_0001.png", "samples/final.png"):
        assert (out / name).is_file(), name
    assert any((out / "logs" / "train").iterdir())
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"]["latent_dim"] == 6  # --set is recorded
    history = json.loads((out / "history.json").read_text())
    assert {"d_loss", "g_loss", "val_d_loss"} <= set(history)
    model = keras.models.load_model(str(out / "model.keras"))
    assert model.latent_dim == 6 and model.image_shape == (32, 32, 1)
    assert np.isfinite(model.generate(2, seed=0)).all()
    assert f"Run directory: {out}" in capsys.readouterr().out


@pytest.mark.parametrize("data_section, batch_dim", [
    ({"batch_size": 32}, 32),  # full batches only: a static batch size, as bare fit
    ({"batch_size": 32, "drop_remainder": False}, None),  # the user keeps every image
    ({"batch_size": 100_000}, None),  # fewer images than one batch: nothing is dropped
])
def test_training_dataset_has_a_static_batch_size(data_section, batch_dim):
    import tensorflow as tf

    from keras_aigc.cli import train
    from keras_aigc.models import DCGAN

    config = {**BASE, "data": {"source": "digits", **data_section}}
    training = config_lib.TrainingConfig(**config["training"])
    train_ds, val_ds, info, batch = train.load_datasets(
        config, training, tf.distribute.get_strategy(), DCGAN)
    assert train_ds.element_spec.shape[0] == batch_dim
    # Validation keeps every image (its last batch may be short).
    assert val_ds.element_spec.shape[0] is None
    if batch_dim:
        assert sum(1 for _ in train_ds) == info.num_examples // batch


def test_learning_rate_schedule_in_compile_trains_and_config_stays_serializable(tmp_path):
    # Keras' Optimizer.from_config swaps a nested schedule dict for the object in place;
    # the trainer must not let that reach the run config (hparams, config.yaml).
    config = json.loads(json.dumps(BASE))
    schedule = {"module": "keras.optimizers.schedules", "class_name": "CosineDecay",
                "config": {"initial_learning_rate": 1e-3, "decay_steps": 10, "alpha": 0.1}}
    config["model"] = {"name": "ConvVAE", "latent_dim": 2, "channels": [4, 4],
                       "hidden_units": [8], "objective": "iwae", "iwae_samples": 2}
    config["data"].update(scaling="sigmoid", binarize="dynamic")
    config["compile"] = {"optimizer": {"class_name": "Adam",
                                       "config": {"learning_rate": schedule}}}
    out = tmp_path / "run"
    assert main(["train", _write(tmp_path, config), "--output", str(out)]) == 0
    with open(out / "config.yaml") as f:
        saved = yaml.safe_load(f)
    assert saved["compile"]["optimizer"]["config"]["learning_rate"] == schedule
    model = keras.models.load_model(str(out / "model.keras"))
    assert model.optimizer.get_config()["learning_rate"]["class_name"] == "CosineDecay"
    assert int(model.optimizer.iterations) == 2


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
    from tests.data.records_fixture import random_images, write_records

    out = str(tmp_path_factory.mktemp("records"))
    write_records(out, random_images(40, size=16, channels=1), np.arange(40) % 2,
                  shards=(2, 1, 1))
    return out  # 24 train images


@pytest.mark.parametrize("data_extra, backup_freq, endless", [
    ({}, "epoch", True),  # backup on: the endless stream, resumable across epochs
    ({}, None, False),  # no backup: epochs that end
    ({"repeat": False}, 5, False),  # the user opts out
    ({"repeat": True}, None, True),
    ({"streaming": False}, "epoch", False),  # read into memory: nothing to stream
])
def test_records_train_on_the_endless_stream_when_backed_up(records_dir, data_extra,
                                                            backup_freq, endless):
    import tensorflow as tf

    from keras_aigc.cli import train
    from keras_aigc.models import DCGAN

    config = {**BASE, "data": {"source": f"records:{records_dir}", "batch_size": 8,
                               **data_extra}}
    config_lib.validate(config)
    training = config_lib.TrainingConfig(**{**config["training"], "backup_freq": backup_freq})
    train_ds, val_ds, info, _ = train.load_datasets(
        config, training, tf.distribute.get_strategy(), DCGAN)
    infinite = int(tf.data.INFINITE_CARDINALITY)
    assert (int(train_ds.cardinality()) == infinite) == endless
    assert info.steps_per_epoch == (3 if endless else None)
    assert int(val_ds.cardinality()) != infinite  # validation always ends
    assert train_ds.element_spec.shape[0] == 8


def test_train_on_records_with_backup_runs_epochs_of_steps_per_epoch(records_dir, tmp_path):
    out = tmp_path / "run"
    config = {**BASE, "data": {"source": f"records:{records_dir}", "batch_size": 8},
              "training": {"epochs": 2, "num_samples": 4, "backup_freq": 2,
                           "fid_features": "off"}}
    assert main(["train", _write(tmp_path, config), "--output", str(out)]) == 0
    info = json.loads((out / "data_info.json").read_text())
    assert info["steps_per_epoch"] == 3 and info["num_examples"] == 24
    history = json.loads((out / "history.json").read_text())
    assert len(history["d_loss"]) == 2
    model = keras.models.load_model(str(out / "model.keras"))
    assert int(model.d_optimizer.iterations.numpy()) == 6  # 2 epochs of 3 steps
    assert not (out / "backup").exists()  # removed after a finished run

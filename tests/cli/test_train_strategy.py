"""The distribution side of `keras-aigc train`: training.* keys, --strategy, batch sizes."""

import json
import os

import numpy as np
import pytest
import yaml

import keras_aigc as ka
from keras_aigc.cli import config as config_lib
from keras_aigc.cli import main as cli_main
from keras_aigc.cli import train

BASE = {
    "model": {"name": "DCGAN", "latent_dim": 8, "g_filters": [8, 4], "d_filters": [4],
              "kernel_size": 3, "dropout": 0.0},
    "data": {"source": "digits", "batch_size": 8},
    "training": {"epochs": 1, "steps_per_epoch": 2, "num_samples": 4, "verbose": 0,
                 "validation": False},
}


def _with(**training):
    cfg = json.loads(json.dumps(BASE))
    cfg["training"].update(training)
    return cfg


@pytest.mark.parametrize("key, value, match", [
    ("strategy", "horovod", r"training.strategy: Unrecognized strategy='horovod'"),
    ("strategy", 3, r"training.strategy: expected str, got int 3"),
    ("batch_size_mode", "local", r"training.batch_size_mode: unknown mode 'local'"),
    ("backup_freq", 0, r"training.backup_freq: expected 'epoch', a positive step count"),
    ("backup_freq", "batch", r"training.backup_freq: expected 'epoch'"),
    ("mixed_precision", "float16", r"training.mixed_precision: unknown policy 'float16'"),
    ("jit_compile", "yes", r"training.jit_compile: expected true, false or 'auto'"),
    ("steps_per_execution", 0, r"training.steps_per_execution: expected an integer >= 1"),
    ("cluster_timeout", -1, r"training.cluster_timeout: expected a positive number"),
])
def test_bad_training_values(key, value, match):
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(_with(**{key: value}))


def test_good_training_values_validate():
    config_lib.validate(_with(strategy="mirrored:/cpu:0,/cpu:1", batch_size_mode="per_replica",
                              backup_freq=10, mixed_precision="mixed_bfloat16",
                              jit_compile=False, steps_per_execution=4, cluster_timeout=30))


def test_global_batch_size():
    assert train.global_batch_size(32, "global", 2) == 32
    assert train.global_batch_size(16, "per_replica", 2) == 32
    with pytest.raises(config_lib.ConfigError, match="global batch 15 does not split evenly "
                                                     "over 2 replicas"):
        train.global_batch_size(15, "global", 2)


def test_jit_compile_auto_is_off_on_cpu():
    assert train.resolve_jit_compile("auto") is False  # this machine has no GPU/TPU
    assert train.resolve_jit_compile(True) is True


def test_strategy_flag_overrides_config(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    code = cli_main.main(["train", str(path), "--strategy", "bogus",
                          "--output", str(tmp_path / "run")])
    assert code == 2
    assert "training.strategy: Unrecognized strategy='bogus'" in capsys.readouterr().err


def test_output_required_in_a_cluster(tmp_path, monkeypatch, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
        "task": {"type": "worker", "index": 0}}))
    assert cli_main.main(["train", str(path)]) == 2
    assert "--output: required when TF_CONFIG describes a cluster" in capsys.readouterr().err


@pytest.mark.slow
def test_run_under_mirrored_builds_in_scope_with_per_replica_batch(tmp_path):
    cfg = _with(strategy="mirrored:/cpu:0,/cpu:1", batch_size_mode="per_replica",
                backup_freq=1)
    run_dir = str(tmp_path / "run")
    model, hist = train.run(cfg, run_dir)
    strategy = ka.distribute.get_strategy("mirrored:/cpu:0,/cpu:1")
    # The library created the model and both optimizers inside the strategy's scope.
    assert model.distribute_strategy is strategy
    for var in (model.generator.trainable_variables[0], model.g_optimizer.iterations,
                model.d_optimizer.variables[-1]):
        assert len(strategy.experimental_local_results(var.value)) == 2
    with open(os.path.join(run_dir, "data_info.json")) as f:
        info = json.load(f)
    assert info["global_batch_size"] == 16 and info["num_replicas"] == 2
    assert int(model.g_optimizer.iterations.numpy()) == 2
    assert len(hist["g_loss"]) == 1
    assert os.path.isfile(os.path.join(run_dir, "model.keras"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # removed after fit


def test_run_with_mixed_float16_scales_both_gan_losses(tmp_path):
    import keras

    cfg = _with(strategy="default", mixed_precision="mixed_float16", backup_freq=None)
    try:
        model, hist = train.run(cfg, str(tmp_path / "run"))
        assert model.generator.layers[1].compute_dtype == "float16"
        for opt in (model.g_optimizer, model.d_optimizer):
            assert isinstance(opt, keras.optimizers.LossScaleOptimizer)
        assert int(model.g_optimizer.iterations.numpy()) == 2
        assert all(map(np.isfinite, hist["g_loss"] + hist["d_loss"]))
        assert model.generate(2, seed=0).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")

import json
import os

import yaml

from keras_aigc.cli import main as cli
from keras_aigc.metrics.features import DomainFeatures, default_directory
from keras_aigc.metrics.features import domain_features as df


def write_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"name": "DCGAN", "latent_dim": 8},
        "data": {"source": "digits", "batch_size": 64, "split_seed": 3},
    }))
    return str(path)


def test_train_features_writes_to_the_cache_that_evaluate_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(df.CACHE_ENV, str(tmp_path / "cache"))
    rc = cli.main(["train-features", write_config(tmp_path), "--epochs", "1"])
    assert rc == 0
    directory = default_directory("digits", split_seed=3)
    with open(os.path.join(directory, df.INFO_FILE)) as f:
        record = json.load(f)
    assert record["data"] == {"split_seed": 3}
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert f"{record['test_accuracy']:.4f}" in capsys.readouterr().out
    assert DomainFeatures.load(directory).dim == 128


def test_bad_epochs_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["train-features", write_config(tmp_path), "--epochs", "0",
                   "--output", str(tmp_path / "f")])
    assert rc == 2
    assert "--epochs must be a positive integer, got 0" in capsys.readouterr().err

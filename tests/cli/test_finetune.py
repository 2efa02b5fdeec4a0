import json
import os

import keras
import numpy as np
import pytest
import yaml

from keras_aigc.cli import evaluate
from keras_aigc.cli import finetune as finetune_cli
from keras_aigc.cli.main import main
from tests.cli.test_evaluate import eval_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs")


def _write(tmp_path, config, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(CONFIGS)
                                         if n.startswith("finetune_")))
def test_shipped_finetune_configs_validate(name):
    finetune_cli.load_config(os.path.join(CONFIGS, name))


FINETUNE = {"model": {"path": "m.keras"}, "reward": {"name": "mean_intensity"},
            "finetune": {"steps": 2, "batch_size": 4, "num_samples": 4}}


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c.update(rewards={}), "rewards: unknown section"),
    (lambda c: c["model"].pop("path"), "model.path: missing"),
    (lambda c: c["model"].update(name="PixelCNN"), "model.name: unknown key"),
    (lambda c: c["reward"].update(name="beauty"), "reward.name: unknown reward 'beauty'"),
    (lambda c: c["reward"].update(colour=1), "reward.colour: unknown argument"),
    (lambda c: c["finetune"].update(kl=1), "finetune.kl: unknown key"),
    (lambda c: c["finetune"].update(steps="many"), "finetune.steps: expected int"),
    (lambda c: c["finetune"].update(strategy="warp"), "training.strategy"),
])
def test_bad_finetune_config_is_named(tmp_path, capsys, mutate, message):
    config = json.loads(json.dumps(FINETUNE))
    mutate(config)
    assert main(["finetune", _write(tmp_path, config)]) == 2
    assert message in capsys.readouterr().err


def test_missing_model_file_is_named(tmp_path, capsys):
    config = json.loads(json.dumps(FINETUNE))
    config["model"]["path"] = str(tmp_path / "none.keras")
    assert main(["finetune", _write(tmp_path, config), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_pixelcnn_trains_evaluates_and_finetunes_from_yaml(tmp_path, capsys):
    train_config = {
        "model": {"name": "PixelCNN", "num_classes": None, "filters": 4, "num_layers": 1,
                  "first_kernel_size": 3},
        "data": {"source": "digits", "batch_size": 32, "scaling": "sigmoid",
                 "binarize": "dynamic", "image_size": [8, 8]},
        "training": {"epochs": 1, "steps_per_epoch": 2, "num_samples": 4},
    }
    run = tmp_path / "run"
    assert main(["train", _write(tmp_path, train_config), "--output", str(run)]) == 0
    history = json.loads((run / "history.json").read_text())
    assert {"nll", "bits_per_dim", "val_nll"} <= set(history)
    assert (run / "samples" / "final.png").is_file()

    results = evaluate.run(eval_args(run, num_samples=40))
    assert results["kind"] == "autoregressive" and results["nll_method"] == "exact"
    assert results["test_elbo"] is None and results["test_nll"] > 0

    config = json.loads(json.dumps(FINETUNE))
    config["model"]["path"] = str(run / "model.keras")
    out = tmp_path / "tuned"
    assert main(["finetune", _write(tmp_path, config, "f.yaml"), "--output", str(out)]) == 0
    for name in ("config.yaml", "model.keras", "history.json", "samples/before.png",
                 "samples/after.png"):
        assert (out / name).is_file(), name
    assert {"reward", "kl", "entropy"} <= set(json.loads((out / "history.json").read_text()))
    tuned = keras.models.load_model(str(out / "model.keras"))
    assert np.isfinite(tuned.log_likelihood(tuned.generate(2, seed=0))).all()
    assert f"Run directory: {out}" in capsys.readouterr().out

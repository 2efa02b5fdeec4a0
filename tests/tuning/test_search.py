import csv
import json
import os
import sys

import pytest
import yaml

from keras_aigc.cli import config as config_lib
from keras_aigc.cli.main import main
from keras_aigc.tuning import require_keras_tuner
from tests.tuning.tiny import BASE, write

LR = "compile.optimizer.config.learning_rate"


@pytest.mark.slow
def test_three_trial_search_finds_the_known_better_learning_rate(tmp_path, capsys):
    # A toy objective whose answer is known: after 8 Adam steps the validation ELBO of a
    # VAE is far better at lr=3e-3 than at 1e-6 or 1e-5 (which barely move the weights).
    config = write(tmp_path / "c.yaml", BASE)
    space = write(tmp_path / "s.yaml", {
        "objective": "val_elbo",
        "hyperparameters": {LR: {"choices": [1.0e-6, 1.0e-5, 3.0e-3]}}})
    out = tmp_path / "search"
    assert main(["tune", config, "--space", space, "--trials", "3", "--algorithm", "random",
                 "--seed", "3", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    with open(out / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"COMPLETED"}
    # Random search never repeats a value while unseen ones remain: all three were tried.
    assert sorted(float(r[LR]) for r in rows) == [1e-6, 1e-5, 3e-3]
    scores = {float(r[LR]): float(r["val_elbo"]) for r in rows}
    # Each score is the trial's own history.json (last val_elbo), a normal run directory.
    for r in rows:
        with open(os.path.join(r["run_dir"], "history.json")) as f:
            assert json.load(f)["val_elbo"][-1] == pytest.approx(float(r["val_elbo"]))
        assert os.path.isfile(os.path.join(r["run_dir"], "model.keras"))
    assert max(scores, key=scores.get) == 3e-3
    best = json.loads((out / "best.json").read_text())
    assert best["best_value"] == pytest.approx(max(scores.values()))
    # The best config is the base config with the best value, and it is runnable.
    best_config = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best_config["compile"]["optimizer"]["config"]["learning_rate"] == 3e-3
    assert {k: v for k, v in best_config.items() if k != "compile"} == \
        {k: v for k, v in config_lib.load_config(config).items() if k != "compile"}
    config_lib.load_config(str(out / "best_config.yaml"))
    assert (out / "best_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| trial |" in printed and "Best trial" in printed


def test_missing_keras_tuner_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_tuner", None)  # import keras_tuner -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'keras-aigc\[tune\]'"):
        require_keras_tuner()
    config = write(tmp_path / "c.yaml", BASE)
    space = write(tmp_path / "s.yaml", {"objective": "val_elbo", "hyperparameters": {
        LR: {"choices": [1e-3]}}})
    assert main(["tune", config, "--space", space, "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "needs KerasTuner" in err and "pip install keras-tuner" in err


def test_bad_search_settings(tmp_path, capsys, monkeypatch):
    config = write(tmp_path / "c.yaml", BASE)
    space = write(tmp_path / "s.yaml", {"objective": "val_elbo", "hyperparameters": {
        "training.epochs": {"choices": [1, 2]}}})
    out = tmp_path / "o"
    assert main(["tune", config, "--space", space, "--trials", "0", "--output",
                 str(out)]) == 2
    assert "--trials must be an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["tune", config, "--space", space, "--algorithm", "hyperband",
                 "--output", str(out)]) == 2
    assert "remove training.epochs from the search space" in capsys.readouterr().err
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    assert main(["tune", config, "--space", space]) == 2
    assert "--output: required in distributed mode" in capsys.readouterr().err


@pytest.mark.slow
def test_objective_missing_from_history_stops_the_search_naming_it(tmp_path, capsys):
    config = write(tmp_path / "c.yaml", BASE)
    space = write(tmp_path / "s.yaml", {"objective": "val_fidelity", "direction": "min",
                                        "hyperparameters": {LR: {"choices": [1e-3, 2e-3]}}})
    assert main(["tune", config, "--space", space, "--trials", "2", "--algorithm", "random",
                 "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "objective 'val_fidelity': not in the trial's history.json" in err
    assert "val_elbo" in err  # the keys it could have used

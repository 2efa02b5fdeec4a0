import keras_tuner
import pytest

from keras_aigc.cli.config import ConfigError, validate
from keras_aigc.cli.main import main
from keras_aigc.tuning import SearchSpace, set_dotted
from tests.tuning.tiny import BASE, write

LR = "compile.optimizer.config.learning_rate"


@pytest.mark.parametrize("entry,message", [
    ({"model.latent_dimz": {"choices": [2, 4]}},
     "hyperparameters.model.latent_dimz: value 2 does not fit the config: "
     "model.latent_dimz: unknown key"),
    ({"training.epochs": {"choices": []}},
     "hyperparameters.training.epochs: choices must be a non-empty list"),
    ({LR: {"min": 1e-2, "max": 1e-4}},
     f"hyperparameters.{LR}: min=0.01 is greater than max=0.0001"),
    ({"training.epochs": {"choices": ["one", "two"]}},
     "hyperparameters.training.epochs: value 'one' does not fit the config: "
     "training.epochs: expected int"),
    ({"model.latent_dim": {"min": 2.5, "max": 4}},
     "hyperparameters.model.latent_dim: value 2.5 does not fit the config: "
     "model.latent_dim: expected int"),
    ({"compile.optimizer.config.learning_rat": {"choices": [0.1]}},
     "hyperparameters.compile.optimizer.config.learning_rat: value 0.1 does not fit the "
     "config: compile.optimizer: not a valid optimizer"),
    ({"compile.g_optimizer.config.learning_rate": {"choices": [0.1]}},
     "compile.g_optimizer is not a mapping in the base config"),
    ({"training.epochs": {"choices": [1, "2"]}},
     "hyperparameters.training.epochs: choices must all be of one type"),
    ({"training.epochs": {"min": 1}}, "hyperparameters.training.epochs: a range needs both"),
    ({"training.epochs": {"choices": [1, 1]}}, "choices has duplicates"),
    ({LR: {"min": 0.0, "max": 1e-3, "sampling": "log"}}, "log sampling needs min > 0"),
    ({LR: {"min": 1e-4, "max": 1e-3, "sampling": "cubic"}}, "sampling: unknown 'cubic'"),
    ({"epochs": {"choices": [1, 2]}}, "hyperparameters.epochs: expected a dotted config key"),
])
def test_bad_entry_fails_naming_the_key(entry, message):
    with pytest.raises(ConfigError) as e:
        SearchSpace(entry, objective="val_elbo").check(validate(BASE))
    assert message in str(e.value)


@pytest.mark.parametrize("kwargs,message", [
    ({"hyperparameters": {}}, "hyperparameters: expected a non-empty mapping"),
    ({"objective": "my_metric"}, "direction: expected one of ['min', 'max']"),
    ({"source": "tensorboard"}, "source: unknown source 'tensorboard'"),
    ({"source": "evaluate", "evaluate": {"num_sample": 3}}, "evaluate.num_sample: unknown"),
    ({"evaluate": {"num_samples": 3}}, "set source: evaluate"),
])
def test_bad_space_settings(kwargs, message):
    kwargs = {"hyperparameters": {"training.epochs": {"choices": [1, 2]}}, **kwargs}
    with pytest.raises(ConfigError) as e:
        SearchSpace(**kwargs)
    assert message in str(e.value)


def test_cli_fails_before_any_trial(tmp_path, capsys):
    config = write(tmp_path / "c.yaml", BASE)
    space = write(tmp_path / "s.yaml", {"objective": "val_elbo",
                                        "hyperparameters": {"model.latent_dimz": {
                                            "choices": [2, 4]}}})
    out = tmp_path / "search"
    assert main(["tune", config, "--space", space, "--trials", "2", "--output",
                 str(out)]) == 2
    assert "hyperparameters.model.latent_dimz" in capsys.readouterr().err
    assert not out.exists()
    bad_top = write(tmp_path / "t.yaml", {"objectiv": "fid", "hyperparameters": {}})
    assert main(["tune", config, "--space", bad_top, "--output", str(out)]) == 2
    assert "objectiv: unknown key" in capsys.readouterr().err
    assert main(["tune", config, "--space", str(tmp_path / "none.yaml")]) == 2
    assert "Search space file not found" in capsys.readouterr().err


def test_declare_and_apply_follow_keras_tuner_types():
    space = SearchSpace({LR: {"min": 1e-4, "max": 1e-2, "sampling": "log"},
                         "training.epochs": {"min": 1, "max": 3},
                         "model.latent_dim": {"choices": [2, 4]}}, objective="val_elbo")
    assert space.direction == "max"  # from the name: a bound to maximise
    hp = keras_tuner.HyperParameters()
    values = space.declare(hp)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {LR: "Float", "training.epochs": "Int", "model.latent_dim": "Choice"}
    config = space.apply(BASE, {**values, LR: 0.005, "unrelated": 1})
    assert config["compile"]["optimizer"]["config"]["learning_rate"] == 0.005
    assert config["training"]["epochs"] == values["training.epochs"]
    assert BASE["compile"]["optimizer"]["config"]["learning_rate"] == 0.001  # not mutated
    assert set_dotted({}, "training.epochs", 3) == {"training": {"epochs": 3}}
    assert SearchSpace({"training.epochs": {"choices": [1]}}, objective="fid").direction \
        == "min"


def test_shipped_example_space_fits_the_dcgan_config():
    import os

    from keras_aigc.cli.config import load_config

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    space = SearchSpace.from_file(os.path.join(root, "examples", "tune_space_dcgan.yaml"))
    space.check(load_config(os.path.join(root, "configs", "dcgan_mnist.yaml")))
    assert space.objective == "fid" and space.direction == "min"
    assert set(space.hyperparameters) == {"compile.g_optimizer.config.learning_rate",
                                          "compile.d_optimizer.config.learning_rate",
                                          "model.d_steps"}

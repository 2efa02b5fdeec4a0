"""A KerasTuner hypermodel whose "model" is a run config."""

import keras_tuner

from keras_aigc.cli.config import validate


class ConfigHyperModel(keras_tuner.HyperModel):
    """Builds a run config (a dict) from a base config and a `SearchSpace`.

    KerasTuner's oracles learn the search space by calling `build(hp)`; here `build`
    declares the space's hyperparameters and returns the base config with the sampled
    values set at their dotted keys, validated. Hyperband's `tuner/epochs` sets
    `training.epochs`.

    Args:
        config: dict. A validated run config (`keras_aigc.cli.config.load_config`).
        space: `keras_aigc.tuning.SearchSpace`.

    Example:

    ```python
    hypermodel = ConfigHyperModel(config, space)
    trial_config = hypermodel.build(keras_tuner.HyperParameters())
    ```
    """

    def __init__(self, config, space):
        super().__init__(name="keras_aigc_config")
        self.config = config
        self.space = space

    def build(self, hp):
        values = self.space.declare(hp)
        config = self.space.apply(self.config, values)
        if "tuner/epochs" in hp.values:
            config = {**config, "training": {**(config.get("training") or {}),
                                             "epochs": int(hp.values["tuner/epochs"])}}
        return validate(config)

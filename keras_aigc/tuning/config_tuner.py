"""A KerasTuner tuner whose trials are `keras-aigc train` runs."""

import argparse
import json
import math
import os
import sys

import keras_tuner
import yaml


class ConfigTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Runs each trial as a normal run directory and reports its objective to the oracle.

    A trial trains the trial's config with `keras_aigc.cli.train.run` into
    `<directory>/trials/trial_<id>` (config.yaml, model.keras, history.json, samples/,
    logs/ and `trial.json`), then reads the objective: the last value of the metric in
    `history.json` (`source: history`), or the metric of `keras-aigc evaluate` run on the
    trial's directory (`source: evaluate`, which also writes its metrics.json).

    Distributed search is KerasTuner's: with `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`
    and `KERASTUNER_TUNER_ID` set, the tuner whose id contains "chief" serves the oracle
    and the others run trials (they must share `directory`).

    Args:
        oracle: a `keras_tuner.Oracle` whose objective is the space's.
        hypermodel: `keras_aigc.tuning.ConfigHyperModel`.
        directory: str. The search directory: KerasTuner's state in `<directory>/tuner`,
            trial runs in `<directory>/trials`.
        stream: file. Where trial progress is printed. Defaults to `sys.stdout`.

    Example:

    ```python
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_elbo", "max"), max_trials=3)
    tuner = ConfigTuner(oracle, ConfigHyperModel(config, space), "runs/search")
    tuner.search()
    ```
    """

    def __init__(self, oracle, hypermodel, directory, stream=None, overwrite=False):
        self.search_dir = directory
        self.stream = stream or sys.stdout
        super().__init__(oracle, hypermodel=hypermodel, directory=directory,
                         project_name="tuner", overwrite=overwrite)

    @property
    def space(self):
        return self.hypermodel.space

    def trial_run_dir(self, trial_id):
        return os.path.join(self.search_dir, "trials", f"trial_{trial_id}")

    def run_trial(self, trial):
        import keras

        from keras_aigc.cli import train

        config = self.hypermodel.build(trial.hyperparameters)
        run_dir = self.trial_run_dir(trial.trial_id)
        values = {k: v for k, v in trial.hyperparameters.values.items()
                  if k in self.space.hyperparameters or k == "tuner/epochs"}
        print(f"\n=== trial {trial.trial_id} ({self.tuner_id}): {values} -> {run_dir}",
              file=self.stream)
        # Each trial starts from the same global state (names, seeds, graph).
        keras.backend.clear_session()
        model, history = train.run(config, run_dir, stream=self.stream)
        value = self._objective_value(run_dir, history)
        record = {"trial_id": trial.trial_id, "tuner_id": self.tuner_id,
                  "hyperparameters": values, "objective": self.space.objective,
                  "direction": self.space.direction, "value": value}
        with open(os.path.join(run_dir, "trial.json"), "w") as f:
            json.dump(record, f, indent=2)
        print(f"=== trial {trial.trial_id}: {self.space.objective} = {value:.6g}",
              file=self.stream)
        return {self.space.objective: value}

    def _objective_value(self, run_dir, history):
        name = self.space.objective
        if self.space.source == "history":
            measured = [v for v in history.get(name, []) if not math.isnan(v)]
            if not measured:
                raise keras_tuner.errors.FatalError(
                    f"objective {name!r}: not in the trial's history.json (keys: "
                    f"{sorted(history)}). Pick one of those, or use source: evaluate.")
            return float(measured[-1])
        from keras_aigc.cli import evaluate

        args = argparse.Namespace(
            run_dir=run_dir, num_samples=1000, features=None, fid_weights=None,
            fid_download=False, cache_dir=None, features_dir=None, inception_weights=None,
            nll_samples=100, batch_size=500, seed=0, output=None)
        for key, value in self.space.evaluate.items():
            setattr(args, key, value)
        results = evaluate.run(args, stream=self.stream)
        value = results.get(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            numeric = sorted(k for k, v in results.items()
                             if isinstance(v, (int, float)) and not isinstance(v, bool))
            raise keras_tuner.errors.FatalError(
                f"objective {name!r}: `keras-aigc evaluate` gave no number by that name "
                f"(numeric keys: {numeric}).")
        return float(value)

    def trial_config(self, trial):
        """The full run config of a trial (the base config with its values)."""
        return self.hypermodel.build(trial.hyperparameters.copy())

    def save_model(self, trial_id, model, step=0):
        # Trials save their model in their run directory (model.keras).
        pass

    def load_model(self, trial):
        from keras_aigc.cli.paths import load_model, resolve_model_path

        return load_model(resolve_model_path(self.trial_run_dir(trial.trial_id)))

    def write_best_config(self, path):
        trial = self.oracle.get_best_trials(1)[0]
        with open(path, "w") as f:
            yaml.safe_dump(self.trial_config(trial), f, sort_keys=False)
        return trial

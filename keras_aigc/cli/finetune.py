"""`keras-aigc finetune CONFIG`: reward fine-tuning of a trained model (keras_aigc.rl).

The config has three sections:

```yaml
model: {path: runs/pixelcnn/model.keras}          # the pretrained policy (.keras)
reward: {name: classifier_prob, target: 3, classifier: PATH}   # keras_aigc.rl.REWARDS
finetune: {kl_weight: 0.05, batch_size: 64, steps: 300, learning_rate: 0.0001}
```
"""

import dataclasses
import inspect
import json
import os
import sys
import typing

import yaml

from keras_aigc.cli import config as config_lib

SECTIONS = ("model", "reward", "finetune")


@dataclasses.dataclass
class FinetuneConfig:
    """The `finetune:` section.

    Args:
        kl_weight: float. Weight of the KL to the pretrained model.
        baseline: str. "moving_average" or "batch_mean".
        baseline_decay: float. Decay of the moving-average baseline.
        batch_size: int. Samples per step (global batch).
        steps: int. Steps per epoch.
        epochs: int. Epochs (a backup and a history row after each).
        learning_rate: float. Adam learning rate.
        labels: int, list of int or None. Conditioning labels for conditional policies.
        seed: int. Seed of the sampling noise and of `keras.utils.set_random_seed`.
        strategy: str. `keras_aigc.distribute.get_strategy` spec.
        num_samples: int. Images in the before/after sample grids.
        verbose: str or int. Keras progress display.
    """

    kl_weight: float = 0.1
    baseline: str = "moving_average"
    baseline_decay: float = 0.9
    batch_size: int = 64
    steps: int = 100
    epochs: int = 1
    learning_rate: float = 1e-4
    labels: typing.Any = None
    seed: int = 0
    strategy: str = "auto"
    num_samples: int = 64
    verbose: typing.Union[str, int] = "auto"


def add_parser(subparsers):
    p = subparsers.add_parser(
        "finetune", help="Fine-tune a trained model toward a reward (policy gradient + KL).",
        description="Reward fine-tuning (keras_aigc.rl.RewardFineTuning) from a YAML config "
                    "with sections model (path of a .keras), reward (name from the reward "
                    "registry plus its arguments) and finetune. Writes the fine-tuned "
                    "model.keras, history.json and before/after sample grids.")
    p.add_argument("config", help="Path to a YAML fine-tuning config (see configs/).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a config value by dotted path (parsed as YAML).")
    p.add_argument("--output", default=None,
                   help="Run directory (default: runs/<config name>-<timestamp>).")
    p.set_defaults(func=main)
    return p


def load_config(path, overrides=()):
    """Reads and validates a fine-tuning config; raises ConfigError naming the key."""
    config = config_lib.read_yaml(path)
    config = config_lib.apply_overrides(config, overrides)
    if not isinstance(config, dict):
        raise config_lib.ConfigError("config: expected a mapping at the top.")
    for key in config:
        if key not in SECTIONS:
            raise config_lib.ConfigError(f"{key}: unknown section. Allowed sections: "
                                         f"{list(SECTIONS)}.")
    model = config.get("model") or {}
    config_lib.check_kwargs("model", model, lambda path: None)
    if "path" not in model:
        raise config_lib.ConfigError("model.path: missing. Give the .keras file of a trained "
                                     "model with an exact likelihood (e.g. a PixelCNN run).")
    reward = dict(config.get("reward") or {})
    from keras_aigc import rl

    if reward.get("name") not in rl.REWARDS:
        raise config_lib.ConfigError(f"reward.name: unknown reward {reward.get('name')!r}. "
                                     f"Choose one of {sorted(rl.REWARDS)}.")
    factory = rl.REWARDS[reward.pop("name")]
    params = inspect.signature(factory).parameters
    for key in reward:
        if key not in params:
            raise config_lib.ConfigError(f"reward.{key}: unknown argument. Allowed: "
                                         f"{sorted(params)}.")
    config_lib.check_kwargs("finetune", config.get("finetune") or {}, FinetuneConfig)
    if "strategy" in (config.get("finetune") or {}):
        config_lib.check_training_values({"strategy": config["finetune"]["strategy"]})
    return config


def run(config, run_dir, stream=None):
    """Fine-tunes as the config says and fills `run_dir`. Returns `(tuner, history)`."""
    stream = stream or sys.stdout
    settings = FinetuneConfig(**(config.get("finetune") or {}))
    from keras_aigc import distribute

    strategy = distribute.get_strategy(settings.strategy)
    import keras

    from keras_aigc import rl
    from keras_aigc.utils.image_grid import save_grid

    keras.utils.set_random_seed(settings.seed)
    model_path = config["model"]["path"]
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"model.path={model_path!r} does not exist; train a model "
                                "first, e.g. keras-aigc train configs/pixelcnn_mnist.yaml.")
    reward_kwargs = {k: v for k, v in config["reward"].items() if k != "name"}
    reward = rl.get(config["reward"]["name"], **reward_kwargs)
    chief = distribute.is_chief(strategy)
    out_dir = distribute.chief_or_temp_dir(run_dir, strategy)
    try:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "config.yaml"), "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        with strategy.scope():
            import keras_aigc.models  # noqa: F401 - registers the model classes

            policy = keras.models.load_model(model_path)
            tuner = rl.RewardFineTuning(policy, reward, kl_weight=settings.kl_weight,
                                        baseline=settings.baseline,
                                        baseline_decay=settings.baseline_decay,
                                        seed=settings.seed)
            tuner.compile(keras.optimizers.Adam(settings.learning_rate))
        value_range = tuple(policy.value_range)  # the GenerativeModel contract
        save_grid(policy.generate(settings.num_samples, seed=settings.seed),
                  os.path.join(out_dir, "samples", "before.png"), value_range=value_range)
        callbacks = [keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"))]
        history = tuner.fit(tuner.dataset(settings.batch_size, labels=settings.labels),
                            epochs=settings.epochs, steps_per_epoch=settings.steps,
                            callbacks=callbacks, verbose=settings.verbose)
        after = save_grid(policy.generate(settings.num_samples, seed=settings.seed),
                          os.path.join(out_dir, "samples", "after.png"),
                          value_range=value_range)
        tmp = os.path.join(out_dir, "model.tmp.keras")
        policy.save(tmp)
        os.replace(tmp, os.path.join(out_dir, "model.keras"))
        hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        with open(os.path.join(out_dir, "history.json"), "w") as f:
            json.dump(hist, f, indent=2)
    finally:
        distribute.cleanup_temp_dir(run_dir, strategy)
    if chief:
        print(f"\nRun directory: {run_dir}\n  model: {os.path.join(run_dir, 'model.keras')}"
              f"\n  samples after fine-tuning: {after}", file=stream)
    return tuner, hist


def main(args):
    from keras_aigc.cli.train import default_run_dir

    config = load_config(args.config, args.overrides)
    run(config, args.output or default_run_dir(args.config))
    return 0

"""`keras-aigc train CONFIG`: build data and model from a config, fit, save a run dir."""

import datetime
import inspect
import json
import os
import sys

import yaml

from keras_aigc.cli import config as config_lib


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="Train a model from a YAML config into a run directory.",
        description="Train a model from a YAML config. The run directory gets the resolved "
                    "config, sample grids, TensorBoard logs, history.json and model.keras.")
    p.add_argument("config", help="Path to a YAML run config (see configs/).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a config value by dotted path, e.g. --set training.epochs=3. "
                        "Repeatable; values are parsed as YAML.")
    p.add_argument("--output", default=None,
                   help="Run directory (default: runs/<config name>-<timestamp>).")
    p.set_defaults(func=main)
    return p


def default_run_dir(config_path):
    stem = os.path.splitext(os.path.basename(config_path))[0]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{stem}-{stamp}")


def build_model(config, info):
    """Instantiates the configured model for a dataset described by `info`."""
    cls, preset, kwargs = config_lib.check_model_section(config["model"])
    params = set()
    for fn in config_lib.model_signature_fns(cls):
        params.update(inspect.signature(fn).parameters)
    if "image_shape" in params and "image_shape" not in kwargs and not preset:
        kwargs["image_shape"] = list(info.image_shape)
    if "num_classes" in params and "num_classes" not in kwargs:
        kwargs["num_classes"] = info.num_classes
    if preset:
        return cls.from_preset(preset, **kwargs)
    return cls(**kwargs)


def run(config, run_dir, stream=None):
    """Trains as the config says and fills `run_dir`. Returns `(model, history_dict)`."""
    import keras

    from keras_aigc import callbacks as cb
    stream = stream or sys.stdout
    from keras_aigc import data

    training = config_lib.TrainingConfig(**(config.get("training") or {}))
    keras.utils.set_random_seed(training.seed)
    data_kwargs = dict(config["data"])
    source = data_kwargs.pop("source")
    model_cls, _, _ = config_lib.check_model_section(config["model"])
    conditional = "num_classes" in inspect.signature(model_cls.__init__).parameters
    data_kwargs.setdefault("labels", conditional)
    train_ds, info = data.load(source, split="train", with_info=True, **data_kwargs)
    val_ds = None
    if training.validation:
        val_kwargs = {k: v for k, v in data_kwargs.items() if k != "shuffle"}
        val_ds = data.load(source, split="validation", shuffle=False, **val_kwargs)

    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    with open(os.path.join(run_dir, "data_info.json"), "w") as f:
        json.dump(info.to_dict(), f, indent=2)

    model = build_model(config, info)
    model.compile(**(config.get("compile") or {}))
    samples = cb.SampleGrid(os.path.join(run_dir, "samples"), every=training.sample_every,
                            num_images=training.num_samples, seed=training.seed)
    callbacks = [
        samples,
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False),
    ]
    history = model.fit(train_ds, epochs=training.epochs, steps_per_epoch=training.steps_per_epoch,
                        validation_data=val_ds, callbacks=callbacks, verbose=training.verbose)
    final_grid = samples.write("final")
    model_path = os.path.join(run_dir, "model.keras")
    tmp = os.path.join(run_dir, "model.tmp.keras")
    model.save(tmp)
    os.replace(tmp, model_path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    with open(os.path.join(run_dir, "history.json"), "w") as f:
        json.dump(hist, f, indent=2)
    print(f"\nRun directory: {run_dir}", file=stream)
    print(f"  model:       {model_path}", file=stream)
    print(f"  sample grid: {final_grid}", file=stream)
    print(f"  TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'logs')}", file=stream)
    return model, hist


def main(args):
    config = config_lib.load_config(args.config, args.overrides)
    run_dir = args.output or default_run_dir(args.config)
    run(config, run_dir)
    return 0

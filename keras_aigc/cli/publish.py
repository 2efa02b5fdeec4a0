"""`keras-aigc publish RUN_DIR DEST`: a run directory -> a keras-hub style preset directory.

`keras-aigc publish --train CONFIG DEST` trains the config first (into `--run-dir`),
evaluates it when the features are available, then publishes: the one command that
produces a built-in trained preset such as `dcgan_mnist`.
"""

import argparse
import json
import os
import sys

from keras_aigc.cli import config as config_lib


def add_parser(subparsers):
    p = subparsers.add_parser(
        "publish", help="Write a run's trained model as a preset directory with a model card.",
        description="Writes DEST/config.json, model.weights.h5, metadata.json and a README.md "
                    "model card (architecture, data and its sha256, training steps and wall "
                    "time, RUN_DIR/metrics.json from `keras-aigc evaluate` with the network "
                    "that measured it, versions, license). Load it with "
                    "keras_aigc.models.<Class>.from_preset(DEST); upload DEST to the Hugging "
                    "Face Hub or Kaggle to load it as hf://USER/REPO or kaggle://....")
    p.add_argument("source", help="A run directory written by `keras-aigc train` (with "
                                  "--train: a YAML run config to train first).")
    p.add_argument("dest", help="The preset directory to write.")
    p.add_argument("--train", action="store_true",
                   help="SOURCE is a config: train it, evaluate it, then publish.")
    p.add_argument("--run-dir", default=None,
                   help="With --train: the run directory (default: runs/<DEST name>).")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="With --train: override a config value (as in `keras-aigc train`).")
    p.add_argument("--metrics", default=None,
                   help="A metrics JSON to put on the card (default: RUN_DIR/metrics.json "
                        "when it exists).")
    p.add_argument("--license", default="Apache-2.0",
                   help="License of the weights (default: Apache-2.0).")
    p.add_argument("--description", default=None, help="One sentence for the model card.")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing DEST.")
    p.set_defaults(func=main)
    return p


def _read_json(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from None


def training_record(run_dir, info):
    """Steps, epochs, wall time and batch of a run, from the files `keras-aigc train` wrote."""
    record = {}
    summary = _read_json(os.path.join(run_dir, "training.json")) or {}
    history = _read_json(os.path.join(run_dir, "history.json")) or {}
    epochs = summary.get("epochs") or max((len(v) for v in history.values()), default=None)
    for key, value in (("steps", summary.get("steps")), ("epochs", epochs),
                       ("wall_time_s", summary.get("wall_time_s")),
                       ("global_batch_size", info.get("global_batch_size")),
                       ("strategy", info.get("strategy"))):
        if value is not None:
            record[key] = value
    return record


def publish_run(run_dir, dest, metrics_path=None, license="Apache-2.0", description=None,
                overwrite=False, stream=None):
    """Writes the model of `run_dir` as a preset at `dest`; returns the preset path."""
    from keras_aigc.cli.evaluate import load_run
    from keras_aigc.cli.train_features import split_kwargs
    from keras_aigc.models import preset as preset_lib

    stream = stream or sys.stdout
    model, config, info = load_run(run_dir)
    metrics_path = metrics_path or os.path.join(run_dir, "metrics.json")
    metrics = _read_json(metrics_path)
    if metrics is None and metrics_path != os.path.join(run_dir, "metrics.json"):
        raise FileNotFoundError(f"--metrics: no such file {metrics_path!r}.")
    if metrics is not None:
        # Run-local bookkeeping is not part of the card.
        metrics = {k: v for k, v in metrics.items() if k != "run_dir"}
        if "wall_time_s" in metrics:  # evaluate's own time, not the training's
            metrics["evaluation_wall_time_s"] = metrics.pop("wall_time_s")
    data_section = dict(config["data"])
    data = preset_lib.data_fingerprint(data_section["source"], **split_kwargs(data_section))
    for key in ("image_shape", "num_examples", "scaling", "binarize"):
        if info.get(key) is not None:
            data[key] = info[key]
    description = description or (f"{type(model).__name__} trained with keras-aigc on "
                                   f"{data_section['source']}.")
    path = model.save_to_preset(dest, metrics=metrics, data=data,
                                training=training_record(run_dir, info), license=license,
                                description=description, overwrite=overwrite)
    print(f"Preset: {path}", file=stream)
    print(f"  card: {os.path.join(path, preset_lib.README_FILE)}", file=stream)
    print(f"  load: keras_aigc.models.{type(model).__name__}.from_preset({path!r})",
          file=stream)
    if metrics is None:
        print(f"  metrics: none ({metrics_path} missing; run `keras-aigc evaluate {run_dir}` "
              "first to put measured numbers on the card)", file=stream)
    return path


def train_and_publish(args, stream):
    from keras_aigc.cli import evaluate
    from keras_aigc.cli import train as train_cli

    if os.path.exists(args.dest) and not args.overwrite:
        raise ValueError(f"dest={args.dest!r} already exists; pass --overwrite to replace it.")
    config = config_lib.load_config(args.source, args.overrides)
    run_dir = args.run_dir or os.path.join("runs", os.path.basename(os.path.abspath(args.dest)))
    train_cli.run(config, run_dir, stream=stream)
    eval_args = evaluate.add_parser(argparse.ArgumentParser().add_subparsers()).parse_args(
        [run_dir])
    try:
        evaluate.run(eval_args, stream=stream)
    except FileNotFoundError as e:
        print(f"Not evaluated ({e}); the card will say 'not measured'.", file=stream)
    return publish_run(run_dir, args.dest, metrics_path=args.metrics, license=args.license,
                       description=args.description, overwrite=args.overwrite, stream=stream)


def main(args, stream=None):
    stream = stream or sys.stdout
    if args.train:
        train_and_publish(args, stream)
        return 0
    if args.run_dir or args.overrides:
        raise ValueError("--run-dir and --set only apply with --train.")
    publish_run(args.source, args.dest, metrics_path=args.metrics, license=args.license,
                description=args.description, overwrite=args.overwrite, stream=stream)
    return 0

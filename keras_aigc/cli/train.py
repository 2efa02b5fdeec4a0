"""`keras-aigc train CONFIG`: build data and model from a config, fit, save a run dir."""

import copy
import datetime
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
    p.add_argument("--strategy", default=None, metavar="SPEC",
                   help="Distribution strategy (overrides training.strategy): auto, default, "
                        "one_device[:DEVICE], mirrored[:DEVICES], multi_worker (reads "
                        "TF_CONFIG) or tpu[:ADDRESS].")
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
    if cls.takes_image_shape() and "image_shape" not in kwargs and not preset:
        kwargs["image_shape"] = list(info.image_shape)
    if cls.conditional and "num_classes" not in kwargs:
        kwargs["num_classes"] = info.num_classes
    if preset:
        return cls.from_preset(preset, **kwargs)
    return cls(**kwargs)


def resolve_jit_compile(value):
    """`"auto"` -> XLA only with a GPU or TPU; booleans pass through."""
    if value != "auto":
        return bool(value)
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def global_batch_size(batch_size, mode, num_replicas):
    """The batch of one step over all replicas, from the config's `data.batch_size`."""
    if mode == "global":
        if batch_size % num_replicas:
            raise config_lib.ConfigError(
                f"data.batch_size: the global batch {batch_size} does not split evenly over "
                f"{num_replicas} replicas; use a multiple of {num_replicas} or set "
                "training.batch_size_mode=per_replica.")
        return batch_size
    return batch_size * num_replicas


def load_datasets(config, training, strategy, model_cls):
    """Train (and validation) datasets for the strategy's global batch.

    Returns `(train_ds, val_ds or None, info, global batch size)`.
    """
    from keras_aigc import data, distribute

    replicas = strategy.num_replicas_in_sync
    data_kwargs = dict(config["data"])
    source = data_kwargs.pop("source")
    data_kwargs["batch_size"] = global_batch_size(
        data_kwargs.get("batch_size", 128), training.batch_size_mode, replicas)
    if replicas > 1 or distribute.is_multi_worker(strategy):
        # Equal per-replica batches in every step (a short last batch would leave some
        # replicas empty and change the global-batch average).
        data_kwargs["drop_remainder"] = True
    data_kwargs.setdefault("labels", model_cls.trains_on_labels(config["model"]))
    repeat = data_kwargs.pop("repeat", None)
    if repeat is None:
        # With a backup, streamed records train from the endless stream: its iterator,
        # saved with each backup, resumes step-exactly across epochs (info.steps_per_epoch
        # sets the epoch length).
        repeat = (str(source).startswith("records:") and data_kwargs.get("streaming", True)
                  and training.backup_freq is not None)
    train_ds, info = data.load(source, split="train", with_info=True, repeat=bool(repeat),
                               **data_kwargs)
    if (not repeat and "drop_remainder" not in data_kwargs  # an endless stream: full batches
            and info.num_examples >= data_kwargs["batch_size"]):
        # A static batch size (as under several replicas): the traced train step is then
        # the graph bare `fit` on full batches runs, and no epoch ends in a short batch
        # with other batch-norm statistics. Each epoch reshuffles, so the < batch_size
        # images left out differ from epoch to epoch. `data.drop_remainder: false` keeps them.
        train_ds = data.load(source, split="train", drop_remainder=True, **data_kwargs)
    val_ds = None
    if training.validation:
        val_kwargs = {k: v for k, v in data_kwargs.items() if k != "shuffle"}
        val_ds = data.load(source, split="validation", shuffle=False, **val_kwargs)
    return train_ds, val_ds, info, data_kwargs["batch_size"]


def write_run_info(out_dir, config, info, batch_size, strategy):
    """`config.yaml` (paths absolute) and `data_info.json` of the run directory."""
    from keras_aigc import distribute

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    with open(os.path.join(out_dir, "data_info.json"), "w") as f:
        json.dump({**info.to_dict(), "global_batch_size": batch_size,
                   "num_replicas": strategy.num_replicas_in_sync,
                   "strategy": distribute.describe(strategy)}, f, indent=2)


def build_and_compile(config, info, training, strategy):
    """The library, not the user, creates the model and its optimizers in the scope."""
    with strategy.scope():
        model = build_model(config, info)
        if not model.built:
            model.build()
        # A deep copy: Keras' Optimizer.from_config replaces a nested learning-rate
        # schedule dict by the schedule object in place, which would leave the run
        # config unserializable (hparams, config.yaml).
        compile_kwargs = copy.deepcopy(dict(config.get("compile") or {}))
        compile_kwargs.setdefault("jit_compile", resolve_jit_compile(training.jit_compile))
        compile_kwargs.setdefault("steps_per_execution", training.steps_per_execution)
        model.compile(**compile_kwargs)
    return model


def make_callbacks(out_dir, run_dir, training, extra_callbacks=(), config=None, stream=None):
    """Returns `(sample grid callback, all callbacks)` for `fit`.

    The sample grid and the FID/hparams monitors (see `train_monitoring`) also log to
    TensorBoard under `<out_dir>/logs`.
    """
    import keras

    from keras_aigc import callbacks as cb
    from keras_aigc.cli import train_monitoring

    samples = cb.SampleGrid(os.path.join(out_dir, "samples"), every=training.sample_every,
                            num_images=training.num_samples, seed=training.seed,
                            tensorboard_dir=os.path.join(out_dir, "logs", "samples"),
                            interpolation_rows=training.interpolation_rows,
                            interpolation_steps=training.interpolation_steps)
    before_tb, after_tb = train_monitoring.callbacks(config or {}, training, out_dir,
                                                     stream or sys.stdout)
    callbacks = [
        samples, *before_tb,
        keras.callbacks.TensorBoard(os.path.join(out_dir, "logs"), write_graph=False),
        *after_tb,
    ]
    if training.backup_freq is not None:
        # Streamed records resume their tf.data iterator instead of replaying batches.
        source = str(((config or {}).get("data") or {}).get("source", ""))
        backup_cls = (cb.StreamingBackupAndRestore if source.startswith("records:")
                      else cb.BackupAndRestore)
        callbacks.append(backup_cls(os.path.join(run_dir, "backup"),
                                    save_freq=training.backup_freq))
    callbacks.extend(extra_callbacks)
    return samples, callbacks


def save_results(out_dir, model, history):
    """Writes `model.keras` atomically and `history.json`; returns `(path, history dict)`."""
    model_path = os.path.join(out_dir, "model.keras")
    tmp = os.path.join(out_dir, "model.tmp.keras")
    model.save(tmp)
    os.replace(tmp, model_path)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    with open(os.path.join(out_dir, "history.json"), "w") as f:
        json.dump(hist, f, indent=2)
    return model_path, hist


def run(config, run_dir, stream=None, extra_callbacks=()):
    """Trains as the config says and fills `run_dir`. Returns `(model, history_dict)`.

    Under a multi-worker strategy every task runs this with the same `run_dir`: the chief
    writes there, the other tasks write to temporary directories that are removed.
    """
    training = config_lib.TrainingConfig(**(config.get("training") or {}))
    from keras_aigc import distribute

    # The strategy comes first: MultiWorkerMirroredStrategy must configure collectives
    # before TensorFlow runs any op.
    strategy = distribute.get_strategy(training.strategy, timeout=training.cluster_timeout)
    import keras

    stream = stream or sys.stdout
    keras.utils.set_random_seed(training.seed)
    if training.mixed_precision:
        from keras_aigc.utils.mixed_precision import resolve_policy

        policy, reason = resolve_policy(training.mixed_precision, strategy=strategy)
        if reason:
            print(f"mixed_precision auto: {policy} ({reason})", file=stream)
        keras.mixed_precision.set_global_policy(policy)
    model_cls, _, _ = config_lib.check_model_section(config["model"])
    train_ds, val_ds, info, batch_size = load_datasets(config, training, strategy, model_cls)

    chief = distribute.is_chief(strategy)
    out_dir = distribute.chief_or_temp_dir(run_dir, strategy)
    try:
        write_run_info(out_dir, config, info, batch_size, strategy)
        model = build_and_compile(config, info, training, strategy)
        samples, callbacks = make_callbacks(out_dir, run_dir, training, extra_callbacks,
                                            config=config, stream=stream)
        print(f"Strategy: {distribute.describe(strategy)}; global batch {batch_size}",
              file=stream)
        history = model.fit(train_ds, epochs=training.epochs,
                            steps_per_epoch=training.steps_per_epoch or info.steps_per_epoch,
                            validation_data=val_ds, callbacks=callbacks,
                            verbose=training.verbose)
        final_grid = samples.write("final")
        model_path, hist = save_results(out_dir, model, history)
    finally:
        distribute.cleanup_temp_dir(run_dir, strategy)
    if chief:
        print(f"\nRun directory: {run_dir}", file=stream)
        print(f"  model:       {model_path}", file=stream)
        print(f"  sample grid: {final_grid}", file=stream)
        print(f"  TensorBoard: tensorboard --logdir {os.path.join(run_dir, 'logs')}",
              file=stream)
    return model, hist


def main(args):
    overrides = list(args.overrides)
    if args.strategy is not None:
        overrides.append(f"training.strategy={args.strategy}")
    config = config_lib.load_config(args.config, overrides)
    if args.output is None:
        from keras_aigc.distribute.strategy import num_tasks, parse_tf_config

        if num_tasks(parse_tf_config()) > 1:
            raise config_lib.ConfigError(
                "--output: required when TF_CONFIG describes a cluster, so that every task "
                "uses the same run directory (the default one carries a timestamp).")
    run_dir = args.output or default_run_dir(args.config)
    run(config, run_dir)
    return 0

"""A callback that records a run's config and final metrics with TensorBoard's hparams plugin."""

import json
import os
import time

import keras
import numpy as np

from keras_aigc.distribute import is_chief


def flatten_hparams(config, prefix=""):
    """Nested config -> `{"model.latent_dim": 64, ...}` with hparams-plugin value types.

    Numbers, booleans and strings stay as they are; lists become their JSON text and `None`
    the string `"None"`, so every run shows the same columns.
    """
    flat = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_hparams(value, prefix=f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is None:
            flat[name] = "None"
        else:
            flat[name] = json.dumps(value)
    return flat


class HParamsLogger(keras.callbacks.Callback):
    """Logs the run's config as hparams and its final metrics, so runs compare side by side.

    At the start of training it writes the flattened config (`flatten_hparams`) to
    `log_dir` through TensorBoard's hparams plugin; at the end it writes the last value of
    every logged metric (e.g. the last measured `fid`, `d_loss`) as the scalar
    `final/<name>` in the same run and declares those as the hparams metrics. Optionally it
    writes the same numbers, the step count and the wall time to `summary_path` (JSON).
    Only the chief writes.

    Args:
        log_dir: str. The TensorBoard log directory (the parent of Keras' `train/`).
        hparams: dict. The (possibly nested) config to record.
        summary_path: str or None. Where to write `{"epochs", "steps", "wall_time_s",
            "final_metrics"}`.

    Example:

    ```python
    gan.fit(ds, epochs=5, callbacks=[
        keras.callbacks.TensorBoard("runs/x/logs"),
        keras_aigc.callbacks.HParamsLogger("runs/x/logs", {"model": {"latent_dim": 64}})])
    ```
    """

    def __init__(self, log_dir, hparams, summary_path=None):
        super().__init__()
        if not isinstance(hparams, dict):
            raise ValueError(f"hparams must be a dict, got {type(hparams).__name__}.")
        self.log_dir = log_dir
        self.hparams = flatten_hparams(hparams)
        self.summary_path = summary_path
        self.final_metrics = {}
        self.epochs = 0
        self.wall_time_s = None
        self._start = None

    def _chief(self):
        return is_chief(self.model.distribute_strategy)

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()
        if not self._chief():
            return
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            hp.hparams(self.hparams, trial_id=os.path.basename(
                os.path.dirname(os.path.abspath(self.log_dir))) or None)
        writer.close()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = epoch + 1
        for key, value in (logs or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(value):
                self.final_metrics[key] = value

    def _steps(self):
        return self.model.training_steps()

    def on_train_end(self, logs=None):
        self.wall_time_s = round(time.perf_counter() - self._start, 2)
        if not self._chief():
            return
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        names = sorted(self.final_metrics)
        writer = tf.summary.create_file_writer(self.log_dir)
        with writer.as_default():
            hp.hparams_config(
                hparams=[hp.HParam(k) for k in sorted(self.hparams)],
                metrics=[hp.Metric(f"final/{k}", display_name=k) for k in names])
            for k in names:
                tf.summary.scalar(f"final/{k}", self.final_metrics[k],
                                  step=max(self.epochs - 1, 0))
        writer.close()
        if self.summary_path:
            summary = {"epochs": self.epochs, "steps": self._steps(),
                       "wall_time_s": self.wall_time_s, "final_metrics": self.final_metrics}
            tmp = f"{self.summary_path}.tmp"
            with open(tmp, "w") as f:
                json.dump(summary, f, indent=2)
            os.replace(tmp, self.summary_path)

"""One task of a test cluster: `python cluster_worker.py JOB.json TASK_INDEX`.

JOB.json: {"config": <run config>, "run_dir": str, "step_log": str or null,
"step_sleep": float}. Trains with `keras_aigc.cli.train.run` (the CLI's code path) and,
when asked, appends one JSON line per trained step: the GAN's step number
(`g_optimizer.iterations`) and the step's losses.
"""

import json
import os
import sys
import time


def pin_keras(job, index):
    """Fits a plain Keras model under MultiWorkerMirroredStrategy three ways and records
    how each ends: stock Keras, Keras with only fix 1, and with keras_aigc's mixin."""
    import numpy as np

    from keras_aigc.distribute import get_strategy

    strategy = get_strategy("multi_worker", timeout=120)
    import keras
    import tensorflow as tf

    from keras_aigc.distribute.keras_fixes import MultiWorkerFitMixin

    class Fix1Only(keras.Model):
        # Fix 1 alone: the mixin's build, Keras' own (scalar) logs.
        _maybe_symbolic_build = MultiWorkerFitMixin._maybe_symbolic_build
        _needs_data_to_build = MultiWorkerFitMixin._needs_data_to_build

    class Fixed(MultiWorkerFitMixin, keras.Model):
        def train_step(self, data):
            return self.step_logs(super().train_step(data))

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    results = {}
    for name, cls in (("stock", keras.Model), ("fix1_only", Fix1Only), ("fixed", Fixed)):
        with strategy.scope():
            inp = keras.Input((4,))
            model = cls(inp, keras.layers.Dense(1)(inp))
            model.compile(optimizer="sgd", loss="mse")
        try:
            hist = model.fit(ds, epochs=2, verbose=0)
            results[name] = {"ok": True, "loss": [float(v) for v in hist.history["loss"]],
                             "kernel": model.weights[0].numpy().ravel().tolist()}
        except Exception as e:  # recorded for the test to pin
            results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
    with open(f"{job['result']}.task{index}", "w") as f:
        json.dump(results, f)


def main():
    job_path, index = sys.argv[1], int(sys.argv[2])
    with open(job_path) as f:
        job = json.load(f)
    if job.get("mode") == "pin_keras":
        return pin_keras(job, index)
    from keras_aigc.cli import train

    extra = []
    if job.get("step_log") or job.get("step_sleep"):
        import keras

        class StepLog(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.last = None

            def on_train_begin(self, logs=None):
                # After BackupAndRestore (earlier in the list) restored the optimizers.
                self.last = self._step()

            def _step(self):
                # GANs count generator updates; VAEs have one optimizer.
                opt = getattr(self.model, "g_optimizer", None) or self.model.optimizer
                return int(opt.iterations.numpy())

            def on_epoch_begin(self, epoch, logs=None):
                self.count, self.prev = 0, {}

            def on_train_batch_begin(self, batch, logs=None):
                # Before the step, so that a kill during the sleep lands after the
                # previous step's backup and log and before this step trains.
                if job.get("step_sleep"):
                    time.sleep(job["step_sleep"])

            def on_train_batch_end(self, batch, logs=None):
                step = self._step()
                if not job.get("step_log") or step == self.last:
                    return  # a step skipped on resume trains nothing
                self.last = step
                # Logs are running means since the epoch began (or since the resume);
                # recover this step's own value too.
                self.count += 1
                rec = {"step": step, "pid": os.getpid()}
                for k, v in (logs or {}).items():
                    rec[k] = float(v)
                    rec["step_" + k] = (float(v) * self.count
                                        - self.prev.get(k, 0.0) * (self.count - 1))
                    self.prev[k] = float(v)
                with open(f"{job['step_log']}.task{index}", "a") as f:
                    f.write(json.dumps(rec) + "\n")

        extra.append(StepLog())
    train.run(job["config"], job["run_dir"], extra_callbacks=extra)


if __name__ == "__main__":
    main()

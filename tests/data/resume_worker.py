"""One training process for the resume tests: `python resume_worker.py JOB.json`.

JOB.json: {"records": DIR, "backup": DIR, "log": PATH, "sleep": float[, "epochs": int,
"repeat": bool, "save_freq": int or "epoch"]}. Trains a probe model whose step logs a
fingerprint of its batch, with StreamingBackupAndRestore (save_freq=1 unless given);
appends `{"step": s, "epoch": e, "batch": b, "fp": ..., "w": ...}` per trained step to
`log` (the no-op steps a resumed run takes for the steps done before its backup are not
logged). With `repeat`, the data is the endless `repeat=True` stream and fit gets
`steps_per_epoch=info.steps_per_epoch`.
"""

import json
import sys
import time


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    import keras
    import tensorflow as tf

    from keras_aigc import data
    from keras_aigc.callbacks import StreamingBackupAndRestore
    from keras_aigc.models.base import GenerativeModel

    class Probe(GenerativeModel):  # the smallest model of the contract BackupAndRestore takes
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(), initializer="zeros", name="w")
            self.count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="count")

        def call(self, x):
            return x * self.w

        def train_step(self, batch):
            ramp = tf.reshape(tf.range(tf.size(batch[0]), dtype=tf.float32) + 1.0,
                              tf.shape(batch[0]))
            fp = tf.reduce_sum(batch * ramp[None])
            self.w.assign_add(1e-6 * fp)
            self.count.assign_add(1.0)
            return {"fp": fp, "count": self.count}

    repeat = bool(job.get("repeat", False))
    ds, info = data.load(f"records:{job['records']}", batch_size=4, shuffle=True, seed=3,
                         shuffle_buffer=16, drop_remainder=True, repeat=repeat,
                         with_info=True)

    class Log(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.last = int(self.model.count.numpy())  # restored by the backup callback

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            time.sleep(job["sleep"])

        def on_train_batch_end(self, batch, logs=None):
            step = int(float(logs["count"]))
            if step <= self.last:  # a no-op step of a resumed run (stale logs)
                return
            self.last = step
            with open(job["log"], "a") as f:
                f.write(json.dumps({"step": step, "epoch": self.epoch, "batch": batch,
                                    "fp": float(logs["fp"]),
                                    "w": float(self.model.w.numpy())}) + "\n")

    model = Probe()
    model(tf.zeros((1, 16, 16, 3)))
    model.compile(optimizer=None)
    model.fit(ds, epochs=int(job.get("epochs", 1)), verbose=0,
              steps_per_epoch=info.steps_per_epoch, callbacks=[
                  StreamingBackupAndRestore(job["backup"], save_freq=job.get("save_freq", 1),
                                            delete_checkpoint=False), Log()])


if __name__ == "__main__":
    main()

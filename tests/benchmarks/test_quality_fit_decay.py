"""`benchmarks/quality.py train --fit-decay`: the refitted decay_steps reaches the traced step."""

import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import quality  # noqa: E402


def _model(decay_steps):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, decay_steps, 0.0)
    model.compile(keras.optimizers.SGD(schedule), "mse")
    return model, schedule


def test_fit_decay_retraces_the_step_with_the_new_decay_steps():
    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    y = np.random.default_rng(1).random((64, 1), dtype=np.float32)
    model, schedule = _model(1_000_000)
    kernels, changed = [], {}

    class Refit(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # after 8 steps: decay to 0 by step 9
                done = int(self.model.optimizer.iterations.numpy())
                changed.update(quality._fit_decay(self.model, {"optimizer": (10**6, done)}))

        def on_train_batch_end(self, batch, logs=None):
            kernels.append(self.model.weights[0].numpy().copy())

    model.fit(x, y, batch_size=16, epochs=3, callbacks=[Refit()], verbose=0, shuffle=False)
    assert changed == {"optimizer": 9} and schedule.decay_steps == 9
    moves = [float(np.abs(b - a).max()) for a, b in zip(kernels[:-1], kernels[1:])]
    # Steps 1-8 at lr ~0.1; step 9 (iteration 8) at lr 0.1/9; steps 10-12 at lr 0: frozen.
    assert all(m > 0 for m in moves[:8])
    assert moves[8:] == [0.0, 0.0, 0.0]


def test_fit_decay_leaves_a_close_schedule_alone():
    model, schedule = _model(1000)
    model.fit(np.zeros((16, 4), "f4"), np.zeros((16, 1), "f4"), epochs=1, verbose=0)
    function = model.train_function
    assert quality._fit_decay(model, {"optimizer": (1000, 1010)}) == {}
    assert schedule.decay_steps == 1000 and model.train_function is function
    assert quality._fit_decay(model, {"optimizer": (1000, 1200)}) == {"optimizer": 1200}
    assert schedule.decay_steps == 1200 and model.train_function is not function

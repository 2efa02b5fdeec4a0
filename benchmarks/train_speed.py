"""Training speed: `DCGAN.from_preset("tf_tutorial")` through `model.fit` against a hand-written
`tf.function` train step of the same architecture, batch (256) and optimizers.

The reference below is written the way the TensorFlow DCGAN tutorial writes it (Sequential
models, a `@tf.function` step, a Python loop over the dataset). It performs the same
algorithm as `keras_aigc.models.GAN.train_step`: one discriminator update on fresh latents,
then one generator update on fresh latents, with Adam(2e-4, beta_1=0.5) for both. The
tutorial's own step (both players updated from one generator pass, i.e. less compute per
step and a different algorithm) is reported as a second, informational reference.

Both sides read the same `tf.data` pipeline, rounds alternate between them (so load from
other processes hits both alike), and each figure is the median over rounds.

    python benchmarks/train_speed.py [--steps 5 --rounds 3 --markdown out.md]
"""

import argparse
import os
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from keras_aigc import data  # noqa: E402
from keras_aigc.models import DCGAN  # noqa: E402

BATCH = 256
LATENT = 100


def mnist_source():
    path = os.environ.get("KERAS_AIGC_MNIST", os.path.join(ROOT, "..", "shared", "data",
                                                           "mnist.npz"))
    return f"npz:{os.path.abspath(path)}"


# ------------------------------------------------------------ the hand-written reference
def make_generator():
    return keras.Sequential([
        keras.Input((LATENT,)),
        keras.layers.Dense(7 * 7 * 256, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(negative_slope=0.3),
        keras.layers.Reshape((7, 7, 256)),
        keras.layers.Conv2DTranspose(128, 5, strides=1, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(negative_slope=0.3),
        keras.layers.Conv2DTranspose(64, 5, strides=2, padding="same", use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.LeakyReLU(negative_slope=0.3),
        keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same", use_bias=False),
        keras.layers.Activation("tanh", dtype="float32"),
    ])


def make_discriminator():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(64, 5, strides=2, padding="same"),
        keras.layers.LeakyReLU(negative_slope=0.3),
        keras.layers.Dropout(0.3),
        keras.layers.Conv2D(128, 5, strides=2, padding="same"),
        keras.layers.LeakyReLU(negative_slope=0.3),
        keras.layers.Dropout(0.3),
        keras.layers.Flatten(),
        keras.layers.Dense(1, dtype="float32"),
    ])


def bce(labels_value, logits):
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), labels_value), logits=logits))


class Reference:
    """Hand-written GAN training: models, optimizers and `tf.function` steps."""

    def __init__(self, simultaneous=False):
        self.generator = make_generator()
        self.discriminator = make_discriminator()
        self.g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.step = tf.function(self._simultaneous if simultaneous else self._alternating)

    def _alternating(self, images):
        n = tf.shape(images)[0]
        z = tf.random.normal([n, LATENT])
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(images, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = bce(1.0, real_logits) + bce(0.0, fake_logits)
        d_vars = self.discriminator.trainable_variables
        self.d_opt.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        z = tf.random.normal([n, LATENT])
        with tf.GradientTape() as tape:
            g_loss = bce(1.0, self.discriminator(self.generator(z, training=True),
                                                 training=True))
        g_vars = self.generator.trainable_variables
        self.g_opt.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
        return d_loss, g_loss

    def _simultaneous(self, images):
        # The TF tutorial's step: one generator pass feeds both players' losses.
        z = tf.random.normal([tf.shape(images)[0], LATENT])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(images, training=True)
            fake_logits = self.discriminator(fake, training=True)
            g_loss = bce(1.0, fake_logits)
            d_loss = bce(1.0, real_logits) + bce(0.0, fake_logits)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        return d_loss, g_loss

    def timed(self, dataset, steps):
        """Runs `steps` steps; returns images/sec."""
        iterator = iter(dataset)
        images = next(iterator)
        t0 = time.perf_counter()
        for i in range(steps):
            d_loss, _ = self.step(images)
            if i + 1 < steps:
                images = next(iterator)
        d_loss.numpy()  # make sure the last step finished
        return steps * BATCH / (time.perf_counter() - t0)


# ------------------------------------------------------------------------ keras_aigc fit
class _Timer(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.t1 = time.perf_counter()
        self.steps = batch + 1


class Fit:
    def __init__(self, **dcgan_kwargs):
        self.model = DCGAN.from_preset("tf_tutorial", **dcgan_kwargs)
        self.model.compile()  # Adam(2e-4, beta_1=0.5) for both, as the reference

    def timed(self, dataset, steps):
        timer = _Timer()
        self.model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                       callbacks=[timer])
        return timer.steps * BATCH / (timer.t1 - timer.t0)


# --------------------------------------------------------------------------- the driver
def measure(policy, variants, steps, rounds, warmup, dataset):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        runners = {name: make() for name, make in variants.items()}
        results = {name: [] for name in runners}
        for r in runners.values():  # trace and warm up
            r.timed(dataset, warmup)
        for _ in range(rounds):
            for name, r in runners.items():
                results[name].append(r.timed(dataset, steps))
                print(f"[train_speed] {policy} {name}: {results[name][-1]:.1f} images/sec",
                      file=sys.stderr, flush=True)
        return {name: (statistics.median(v), v) for name, v in results.items()}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def run(steps=5, rounds=3, warmup=2, bf16=True, stream=sys.stdout, markdown=None):
    # A few real batches held in memory and repeated: neither side pays for shuffling or
    # iterator start-up inside the timed window, and both see the same images.
    batches = list(data.load(mnist_source(), batch_size=BATCH, drop_remainder=True).take(8))
    dataset = tf.data.Dataset.from_tensor_slices(tf.stack(batches)).repeat()
    rows = []
    fp32 = measure("float32", {
        "fit": Fit,
        "reference": Reference,
        "fit (sync_batchnorm=False)": lambda: Fit(sync_batchnorm=False),
        "reference, tutorial step (simultaneous)": lambda: Reference(simultaneous=True),
    }, steps, rounds, warmup, dataset)
    rows.append(("float32", fp32))
    if markdown:  # a partial table survives a time limit hit during mixed precision
        write_table(table(rows, steps, rounds, warmup), markdown)
    if bf16:
        rows.append(("mixed_bfloat16", measure("mixed_bfloat16", {
            "fit": Fit, "reference": Reference,
        }, steps, rounds, warmup, dataset)))
    text = table(rows, steps, rounds, warmup)
    print(text, file=stream)
    if markdown:
        write_table(text, markdown)
    return text


def write_table(text, path):
    with open(path, "w") as f:
        f.write(text + "\n")


def table(rows, steps, rounds, warmup):
    lines = [
        "### Training speed: DCGAN `tf_tutorial` on MNIST, batch 256",
        "",
        f"{rounds} alternating rounds of {steps} steps after {warmup} warm-up steps; median "
        "images/sec per round (all rounds in brackets). Ratio = this row / the hand-written "
        "`tf.function` reference of the same precision.",
        "",
        "| precision | run | images/sec | ratio vs reference | rounds |",
        "|---|---|---:|---:|---|",
    ]
    for policy, res in rows:
        ref = res["reference"][0]
        for name, (median, values) in res.items():
            lines.append(f"| {policy} | {name} | {median:.1f} | {median / ref:.3f}x | "
                         f"{', '.join(f'{v:.1f}' for v in values)} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--markdown", default=None, help="Also write the table to this file.")
    p.add_argument("--quick", action="store_true",
                   help="Smallest meaningful budget (also set by KERAS_AIGC_BENCH_QUICK=1).")
    args = p.parse_args(argv)
    if args.quick or os.environ.get("KERAS_AIGC_BENCH_QUICK") == "1":
        args.steps, args.rounds, args.warmup = 2, 2, 1
    run(args.steps, args.rounds, args.warmup, bf16=not args.no_bf16,
        markdown=args.markdown or os.environ.get("KERAS_AIGC_BENCH_MARKDOWN"))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

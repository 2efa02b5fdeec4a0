"""Training speed of `model.fit` against hand-written steps, the CLI path against bare `fit`,
bf16 against fp32, and the machine's peak matmul rate.

Sections (each a table of ratios measured in one run; compared variants alternate round by
round, A/B/A/B, so load from other processes hits all of them alike; the load average is
printed beside each table):

1. `update`: `DCGAN.from_preset("tf_tutorial")` (simultaneous update, the tutorial's step)
   through `fit`, against the TF DCGAN tutorial's hand-written `tf.function` step; and the
   alternating update against a hand-written alternating step.
2. `cli`: bare `fit` on a constant batch, then one suspect of the CLI path at a time
   (the `npz:` input pipeline, synchronised batch norm under one replica, the CLI's
   callbacks, a progress bar), and `keras-aigc train`'s own `run()` end to end. The
   per-epoch costs (validation split, sample grid, backup) are timed apart and folded into
   a full MNIST epoch (211 steps of 256).
3. `precision`: DCGAN and VAE `fit` steps in float32 and mixed_bfloat16, with the CPU's bf16
   flags and what `mixed_precision: auto` picks here.
4. The peak matmul GFLOP/s (float32 and bfloat16, 2048^2), so each row reads as a fraction.

    python benchmarks/train_speed.py [--steps 3 --rounds 3 --sections update,cli,precision]
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
    """`fit` of the tf_tutorial DCGAN; `sync_bn=True` forces synchronised batch norm under
    one replica (what models built before the single-replica check did)."""

    def __init__(self, dataset=None, sync_bn=False, callbacks=None, verbose=0, **dcgan_kwargs):
        from keras_aigc.models.gan import dcgan

        resolve = dcgan.synchronize_batchnorm
        if sync_bn:
            dcgan.synchronize_batchnorm = bool
        try:
            self.model = DCGAN.from_preset("tf_tutorial", **dcgan_kwargs)
        finally:
            dcgan.synchronize_batchnorm = resolve
        self.model.compile()  # Adam(2e-4, beta_1=0.5) for both, as the reference
        self.dataset = dataset
        self.callbacks = callbacks() if callbacks else []
        self.verbose = verbose

    def timed(self, dataset, steps):
        timer = _Timer()
        self.model.fit(self.dataset if self.dataset is not None else dataset, epochs=1,
                       steps_per_epoch=steps, verbose=self.verbose,
                       callbacks=self.callbacks + [timer])
        return timer.steps * BATCH / (timer.t1 - timer.t0)


# --------------------------------------------------------------------------- the driver
def load():
    return "load average %.1f/%.1f/%.1f on %d CPUs" % (*os.getloadavg(), os.cpu_count())


def measure(policy, variants, steps, rounds, warmup, dataset, tag=""):
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
                print(f"[train_speed] {tag}{policy} {name}: {results[name][-1]:.1f} images/sec "
                      f"({load()})", file=sys.stderr, flush=True)
        return {name: (statistics.median(v), v) for name, v in results.items()}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def ratio_table(title, note, res, ref):
    lines = [f"#### {title}", "", note, "", f"Measured with {load()}.", "",
             f"| run | images/sec (median) | ratio vs {ref} | rounds |", "|---|---:|---:|---|"]
    base = res[ref][0]
    for name, (median, values) in res.items():
        lines.append(f"| {name} | {median:.1f} | {median / base:.3f}x | "
                     f"{', '.join(f'{v:.1f}' for v in values)} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------ 4. matmul peak
def matmul_peak(n=2048, seconds=2.0):
    """GFLOP/s of an n x n matmul in float32 and bfloat16 (best of repeated calls)."""
    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        a = tf.random.normal((n, n), dtype=tf.float32)
        a = tf.cast(a, dtype)
        f = tf.function(lambda x: tf.matmul(x, x))
        f(a).numpy()
        best, t_end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            t0 = time.perf_counter()
            f(a).numpy()
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
        out[dtype.name] = best
    return out


# ------------------------------------------------------------------------ 1. update step
def section_update(dataset, steps, rounds, warmup):
    res = measure("float32", {
        "hand-written tutorial step (simultaneous)": lambda: Reference(simultaneous=True),
        "fit, tf_tutorial preset (update=simultaneous)": Fit,
        "hand-written alternating step": Reference,
        "fit, update=alternating": lambda: Fit(update="alternating"),
    }, steps, rounds, warmup, dataset, "update ")
    return ratio_table(
        "fit against the hand-written TF tutorial step (DCGAN tf_tutorial, batch 256, float32)",
        f"{rounds} alternating rounds of {steps} steps after {warmup} warm-up steps; the "
        "alternating rows do 2 generator and 3 discriminator passes per step against the "
        "simultaneous step's 1 and 2, so their ratio to the tutorial step is expected < 1.",
        res, "hand-written tutorial step (simultaneous)")


# ------------------------------------------------------------------------ 2. the CLI path
class _EpochCosts(keras.callbacks.Callback):
    """Step throughput after `skip` steps, and the time from the last step to epoch end."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.t1 = time.perf_counter()
        self.steps = batch + 1 - self.skip

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end = time.perf_counter() - self.t1


class CLIRun:
    """`keras_aigc.cli.train.run` on configs/dcgan_mnist.yaml (1 epoch of a few steps)."""

    def __init__(self, validation=True):
        import tempfile

        self.validation = validation
        self.dir = tempfile.mkdtemp(prefix="train_speed_cli-")
        self.epoch_costs = []
        self.n = 0

    def config(self, steps):
        import yaml

        with open(os.path.join(ROOT, "configs", "dcgan_mnist.yaml")) as f:
            config = yaml.safe_load(f)
        config["data"]["source"] = mnist_source()
        config["training"].update(epochs=1, steps_per_epoch=steps, verbose=0,
                                  validation=self.validation)
        return config

    def timed(self, dataset, steps):
        from keras_aigc.cli import train

        del dataset
        timer = _EpochCosts(skip=1)  # the first step traces the function
        self.n += 1
        with open(os.devnull, "w") as devnull:
            train.run(self.config(steps + 1), os.path.join(self.dir, str(self.n)),
                      stream=devnull, extra_callbacks=[timer])
        self.epoch_costs.append(timer.epoch_end)
        return timer.steps * BATCH / (timer.t1 - timer.t0)


def cli_callbacks():
    import tempfile

    from keras_aigc import callbacks as cb

    d = tempfile.mkdtemp(prefix="train_speed_cb-")
    return [cb.SampleGrid(os.path.join(d, "samples")),
            keras.callbacks.TensorBoard(os.path.join(d, "logs"), write_graph=False),
            cb.BackupAndRestore(os.path.join(d, "backup"), save_freq="epoch")]


def section_cli(dataset, steps, rounds, warmup):
    pipeline = data.load(mnist_source(), batch_size=BATCH, drop_remainder=True).repeat()
    cli = CLIRun()
    res = measure("float32", {
        "bare fit, constant batch": lambda: Fit(dataset=constant_batch(dataset)),
        "+ npz: input pipeline (shuffle, batch, scale, prefetch)":
            lambda: Fit(dataset=pipeline),
        "+ synchronised batch norm under 1 replica": lambda: Fit(
            dataset=constant_batch(dataset), sync_bn=True),
        "+ CLI callbacks (SampleGrid, TensorBoard, BackupAndRestore)": lambda: Fit(
            dataset=constant_batch(dataset), callbacks=cli_callbacks),
        "+ progress bar (verbose=1)": lambda: Fit(dataset=constant_batch(dataset), verbose=1),
        "keras-aigc train run(), configs/dcgan_mnist.yaml": lambda: cli,
    }, steps, rounds, warmup, dataset, "cli ")
    text = ratio_table(
        "The CLI path against bare fit (DCGAN tf_tutorial, batch 256, float32, 1 replica)",
        "Per-step throughput; each `+` row adds one suspect to bare `fit` on a constant "
        "batch. The CLI row runs `keras_aigc.cli.train.run` (its pipeline, callbacks, "
        "validation split) and times its steps after the first.",
        res, "bare fit, constant batch")
    step_cli = BATCH / res["keras-aigc train run(), configs/dcgan_mnist.yaml"][0]
    step_bare = BATCH / res["bare fit, constant batch"][0]
    epoch_cost = statistics.median(cli.epoch_costs[1:] or cli.epoch_costs)
    steps_per_epoch = 54000 // BATCH
    full = steps_per_epoch * step_bare / (steps_per_epoch * step_cli + epoch_cost)
    text += (f"\n\nPer-epoch work of the CLI (validation split of 6,000 images, sample grid, "
             f"TensorBoard, backup), measured from the last step to the end of the epoch: "
             f"{epoch_cost:.2f} s (rounds: {', '.join(f'{c:.2f}' for c in cli.epoch_costs)}). "
             f"Over a full MNIST epoch ({steps_per_epoch} steps) the CLI runs at "
             f"**{full:.3f}x** bare fit.")
    return text


def constant_batch(dataset):
    return tf.data.Dataset.from_tensors(next(iter(dataset))).repeat()


# -------------------------------------------------------------------------- 3. precision
class VAEFit:
    BATCH = 100

    def __init__(self):
        from keras_aigc.models import VAE

        self.model = VAE(image_shape=(28, 28, 1), latent_dim=50, hidden_units=(200, 200),
                         activation="tanh", likelihood="bernoulli")
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3))
        self.dataset = data.load(mnist_source(), batch_size=self.BATCH, drop_remainder=True,
                                 scaling="sigmoid", binarize="dynamic").take(8).cache().repeat()

    def timed(self, dataset, steps):
        del dataset
        timer = _Timer()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                       callbacks=[timer])
        return timer.steps * self.BATCH / (timer.t1 - timer.t0)


def section_precision(dataset, steps, rounds, warmup):
    from keras_aigc.utils.mixed_precision import BF16_CPU_FLAGS, auto_policy, cpu_flags

    # One policy per runner: a runner builds its model under the policy active at creation.
    class Policy:
        def __init__(self, policy, make):
            keras.mixed_precision.set_global_policy(policy)
            try:
                self.runner = make()
            finally:
                keras.mixed_precision.set_global_policy("float32")

        def timed(self, dataset, steps):
            return self.runner.timed(dataset, steps)

    const = constant_batch(dataset)
    res = measure("float32", {
        "DCGAN fit float32": lambda: Policy("float32", lambda: Fit(dataset=const)),
        "DCGAN fit mixed_bfloat16": lambda: Policy("mixed_bfloat16", lambda: Fit(dataset=const)),
        "VAE fit float32 (batch 100)": lambda: Policy("float32", VAEFit),
        "VAE fit mixed_bfloat16 (batch 100)": lambda: Policy("mixed_bfloat16", VAEFit),
    }, steps, rounds, warmup, dataset, "precision ")
    flags = sorted(set(BF16_CPU_FLAGS) & cpu_flags())
    policy, reason = auto_policy()
    lines = [
        "#### float32 against mixed_bfloat16", "",
        f"CPU bf16 flags: {flags or 'none'}; `mixed_precision: auto` picks **{policy}** "
        f"({reason}). Measured with {load()}.", "",
        "| model | float32 images/sec | mixed_bfloat16 images/sec | bf16 / fp32 |",
        "|---|---:|---:|---:|"]
    for model in ("DCGAN fit", "VAE fit"):
        f32 = next(v for k, v in res.items() if k.startswith(model) and "float32" in k)[0]
        b16 = next(v for k, v in res.items() if k.startswith(model) and "bfloat16" in k)[0]
        lines.append(f"| {model} | {f32:.1f} | {b16:.1f} | {b16 / f32:.3f}x |")
    return "\n".join(lines)


def section_syncbn(dataset, steps, rounds, warmup):
    """The cheapest CLI suspect alone: synchronised batch norm under one replica."""
    const = constant_batch(dataset)
    res = measure("float32", {
        "bare fit, constant batch (plain BN: 1 replica)": lambda: Fit(dataset=const),
        "+ synchronised batch norm under 1 replica": lambda: Fit(dataset=const, sync_bn=True),
    }, steps, rounds, warmup, dataset, "syncbn ")
    return ratio_table("Synchronised batch norm under one replica (DCGAN tf_tutorial, batch 256)",
                       "The models built before this change used synchronised BN even with one "
                       "replica.", res, "bare fit, constant batch (plain BN: 1 replica)")


def section_precision_dcgan(dataset, steps, rounds, warmup):
    """DCGAN only, float32 against mixed_bfloat16 (the cheap half of `precision`)."""
    from keras_aigc.utils.mixed_precision import auto_policy

    const = constant_batch(dataset)

    def under(policy):
        keras.mixed_precision.set_global_policy(policy)
        try:
            return Fit(dataset=const)
        finally:
            keras.mixed_precision.set_global_policy("float32")

    res = measure("float32", {"DCGAN fit float32": lambda: under("float32"),
                              "DCGAN fit mixed_bfloat16": lambda: under("mixed_bfloat16")},
                  steps, rounds, warmup, dataset, "precision ")
    policy, reason = auto_policy()
    return ratio_table("float32 against mixed_bfloat16 (DCGAN tf_tutorial, batch 256)",
                       f"`mixed_precision: auto` picks {policy} here ({reason}).", res,
                       "DCGAN fit float32")


SECTIONS = {"update": section_update, "cli": section_cli, "precision": section_precision,
            "syncbn": section_syncbn, "precision_dcgan": section_precision_dcgan}


def run(steps=3, rounds=3, warmup=1, sections=tuple(SECTIONS), stream=sys.stdout,
        markdown=None):
    # A few real batches held in memory and repeated: neither side pays for shuffling or
    # iterator start-up inside the timed window, and both see the same images.
    batches = list(data.load(mnist_source(), batch_size=BATCH, drop_remainder=True).take(8))
    dataset = tf.data.Dataset.from_tensor_slices(tf.stack(batches)).repeat()
    peak = matmul_peak()
    parts = ["### Training speed (issue 17)", "",
             f"Peak matmul on this machine (2048^2, best call): float32 {peak['float32']:.0f} "
             f"GFLOP/s, bfloat16 {peak['bfloat16']:.0f} GFLOP/s ({load()}). The "
             f"tf_tutorial DCGAN's simultaneous step costs about "
             f"{dcgan_step_flops() / 1e9:.1f} GFLOP per batch of {BATCH}, so "
             f"{peak['float32'] * 1e9 / dcgan_step_flops() * BATCH:.0f} images/sec is its "
             "float32 matmul bound."]
    for name in sections:
        parts += ["", SECTIONS[name](dataset, steps, rounds, warmup)]
        if markdown:  # a partial table survives a time limit hit in a later section
            write_table("\n".join(parts), markdown)
    text = "\n".join(parts)
    print(text, file=stream)
    if markdown:
        write_table(text, markdown)
    return text


def dcgan_step_flops():
    """Multiply-adds x 2 of one simultaneous step: G forward, D on real and fake, and the
    backward passes (about twice the forward each) of both tapes."""
    # Transposed convs: input pixels x C_in x C_out x k^2 (up0 is stride 1 at 7x7).
    g = 2 * (100 * 7 * 7 * 256 + 7 * 7 * 25 * 256 * 128 + 7 * 7 * 25 * 128 * 64
             + 14 * 14 * 25 * 64)
    d = 2 * (14 * 14 * 25 * 64 + 7 * 7 * 25 * 64 * 128 + 7 * 7 * 128)
    # forward G + 2 D; D tape: backward of both D passes; G tape: D backward on fake + G backward
    per_image = (g + 2 * d) + 2 * (2 * d) + 2 * (d + g)
    return per_image * BATCH


def write_table(text, path):
    with open(path, "w") as f:
        f.write(text + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"Comma-separated subset of {list(SECTIONS)}.")
    p.add_argument("--no-bf16", action="store_true", help="Skip the precision section.")
    p.add_argument("--markdown", default=None, help="Also write the table to this file.")
    p.add_argument("--quick", action="store_true",
                   help="Smallest meaningful budget (also set by KERAS_AIGC_BENCH_QUICK=1).")
    args = p.parse_args(argv)
    if args.quick or os.environ.get("KERAS_AIGC_BENCH_QUICK") == "1":
        args.steps, args.rounds, args.warmup = 2, 2, 1
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        p.error(f"--sections: unknown {bad}; choose from {list(SECTIONS)}.")
    if args.no_bf16 and "precision" in sections:
        sections.remove("precision")
    run(args.steps, args.rounds, args.warmup, sections,
        markdown=args.markdown or os.environ.get("KERAS_AIGC_BENCH_MARKDOWN"))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

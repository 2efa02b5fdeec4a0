"""Training speed of `model.fit` against hand-written steps, the CLI path against bare `fit`,
bf16 against fp32, and the machine's peak matmul rate.

Sections (each a table of ratios measured in one run; compared variants alternate round by
round, A/B/A/B, so load from other processes hits all of them alike; the load average is
printed beside each table):

1. `update`: `DCGAN.from_preset("tf_tutorial")` (simultaneous update, the tutorial's step)
   through `fit`, against the TF DCGAN tutorial's hand-written `tf.function` step; and the
   alternating update against a hand-written alternating step.
2. The CLI path against bare `fit` on a constant batch (same model, batch 256):
   - `cli_parts` (cheap, load-independent: process CPU time): the train step with a
     static and with an unknown batch size, the CLI's `data.load` pipeline per batch,
     its callback hooks per batch, and its per-epoch work (validation split, sample grid,
     TensorBoard, backup), folded into one MNIST epoch (211 steps of 256);
   - `cli_pair`: bare `fit` against the model, datasets and callbacks that
     `keras_aigc.cli.train` builds, interleaved rounds, wall and CPU ratios with their
     range; `cli` adds one suspect at a time as extra rows (the most expensive section).
3. `precision`: DCGAN and VAE `fit` steps in float32 and mixed_bfloat16, with the CPU's bf16
   flags and what `mixed_precision: auto` picks here.
4. The peak matmul GFLOP/s (float32 and bfloat16, 2048^2), so each row reads as a fraction.

    python benchmarks/train_speed.py [--steps 3 --rounds 3 --sections update,cli_parts,precision]
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
        # The first step of each `fit` call (iterator start, shuffle-buffer fill) is left
        # out, as in `CLIPath`; `first_step` keeps it.
        timer = _EpochCosts(skip=1)
        self.model.fit(self.dataset if self.dataset is not None else dataset, epochs=1,
                       steps_per_epoch=steps + 1, verbose=self.verbose,
                       callbacks=self.callbacks + [timer])
        self.first_step = timer.first_step
        self.cpu_per_image = timer.cpu_per_image
        return timer.steps * BATCH / (timer.t1 - timer.t0)


# --------------------------------------------------------------------------- the driver
def load():
    return "load average %.1f/%.1f/%.1f on %d CPUs" % (*os.getloadavg(), os.cpu_count())


def measure(policy, variants, steps, rounds, warmup, dataset, tag="", runners=None,
            cpu=None):
    """Runs every variant `rounds` times, interleaved; returns `{name: (median images/sec,
    per-round values)}`. `runners` (a dict) receives the runner objects, `cpu` the
    per-round process CPU seconds per image of runners that record `cpu_per_image`."""
    keras.mixed_precision.set_global_policy(policy)
    runners = {} if runners is None else runners
    cpu = {} if cpu is None else cpu
    try:
        keras.utils.set_random_seed(0)
        runners.update({name: make() for name, make in variants.items()})
        results = {name: [] for name in runners}
        for r in runners.values():  # trace and warm up
            r.timed(dataset, warmup)
        for _ in range(rounds):
            for name, r in runners.items():
                results[name].append(r.timed(dataset, steps))
                if getattr(r, "cpu_per_image", None) is not None:
                    cpu.setdefault(name, []).append(r.cpu_per_image)
                print(f"[train_speed] {tag}{policy} {name}: {results[name][-1]:.1f} images/sec "
                      f"({load()})", file=sys.stderr, flush=True)
        return {name: (statistics.median(v), v) for name, v in results.items()}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def ratio_table(title, note, res, ref, paired=False):
    """Markdown table of `res` against row `ref`. `paired`: the ratio is the median of the
    per-round ratios (each row against the reference of the same round), with its range."""
    lines = [f"#### {title}", "", note, "", f"Measured with {load()}.", ""]
    if paired:
        lines += [f"| run | images/sec (median) | ratio vs {ref} (median of rounds) | "
                  "ratio range | rounds (images/sec) |", "|---|---:|---:|---:|---|"]
    else:
        lines += [f"| run | images/sec (median) | ratio vs {ref} | rounds |",
                  "|---|---:|---:|---|"]
    base = res[ref][0]
    for name, (median, values) in res.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        if paired:
            ratios = [v / b for v, b in zip(values, res[ref][1], strict=True)]
            lines.append(f"| {name} | {median:.1f} | {statistics.median(ratios):.3f}x | "
                         f"{min(ratios):.3f}-{max(ratios):.3f} | {rounds} |")
        else:
            lines.append(f"| {name} | {median:.1f} | {median / base:.3f}x | {rounds} |")
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
    """Step throughput after `skip` steps (wall and process CPU time), the first step's
    time (from epoch begin), and the time from the last step to the epoch's end
    (validation, sample grid, backup)."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.first_step = None

    def on_epoch_begin(self, epoch, logs=None):
        self.t_begin = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        self.t1, self.c1 = time.perf_counter(), time.process_time()
        if batch == 0:
            self.first_step = self.t1 - self.t_begin
        self.steps = batch + 1 - self.skip

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_end = time.perf_counter() - self.t1
        self.epoch_end_cpu = time.process_time() - self.c1

    @property
    def cpu_per_image(self):
        return (self.c1 - self.c0) / (self.steps * BATCH)


class CLIPath:
    """The training path of `keras-aigc train` on configs/dcgan_mnist.yaml, built once with
    `keras_aigc.cli.train`'s own functions (its `data.load` datasets with the validation
    split, `build_and_compile`, `make_callbacks`: SampleGrid, TensorBoard, FID monitor,
    BackupAndRestore, progress bar) and fitted one epoch of `steps + 1` steps per round,
    as epochs 2.. of a CLI run go (`run()` adds the run-directory files around it).
    `overrides` change the `training:` section."""

    def __init__(self, **overrides):
        import contextlib
        import tempfile

        import yaml

        from keras_aigc import distribute
        from keras_aigc.cli import config as config_lib
        from keras_aigc.cli import train

        with open(os.path.join(ROOT, "configs", "dcgan_mnist.yaml")) as f:
            config = yaml.safe_load(f)
        config["data"]["source"] = mnist_source()
        config["training"].update(epochs=1, **overrides)
        training = config_lib.TrainingConfig(**config["training"])
        strategy = distribute.get_strategy(training.strategy)
        model_cls, _, _ = config_lib.check_model_section(config["model"])
        self.train_ds, self.val_ds, info, _ = train.load_datasets(config, training, strategy,
                                                                   model_cls)
        self.model = train.build_and_compile(config, info, training, strategy)
        out = tempfile.mkdtemp(prefix="train_speed_cli-")
        self.devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the runner
        with contextlib.redirect_stdout(self.devnull):
            _, self.callbacks = train.make_callbacks(out, out, training, config=config,
                                                     stream=self.devnull)
        self.verbose = training.verbose
        self.epoch = 0
        self.epoch_costs, self.epoch_costs_cpu = [], []

    def timed(self, dataset, steps):
        import contextlib

        del dataset
        timer = _EpochCosts(skip=1)
        # The progress bar stays on (`verbose: auto`), written to /dev/null as a
        # non-interactive terminal would get it.
        with contextlib.redirect_stdout(self.devnull):
            self.model.fit(self.train_ds, validation_data=self.val_ds,
                           initial_epoch=self.epoch, epochs=self.epoch + 1,
                           steps_per_epoch=steps + 1, callbacks=self.callbacks + [timer],
                           verbose=self.verbose)
        self.epoch += 1
        self.first_step = timer.first_step
        self.cpu_per_image = timer.cpu_per_image
        self.epoch_costs.append(timer.epoch_end)
        self.epoch_costs_cpu.append(timer.epoch_end_cpu)
        return timer.steps * BATCH / (timer.t1 - timer.t0)


def cli_callbacks():
    import tempfile

    from keras_aigc import callbacks as cb

    d = tempfile.mkdtemp(prefix="train_speed_cb-")
    return [cb.SampleGrid(os.path.join(d, "samples")),
            keras.callbacks.TensorBoard(os.path.join(d, "logs"), write_graph=False),
            cb.BackupAndRestore(os.path.join(d, "backup"), save_freq="epoch")]


def cli_pipeline(**kwargs):
    """The training dataset exactly as `keras-aigc train` builds it for one replica."""
    return data.load(mnist_source(), batch_size=BATCH, **kwargs)


def unknown_batch(dataset):
    """The constant batch with its batch dimension unknown to the traced step (what a
    dataset batched without `drop_remainder` declares)."""
    x = next(iter(dataset))
    return tf.data.Dataset.from_tensors((x, tf.shape(x)[0])).repeat().map(
        lambda b, n: b[:n])


CLI_ROW = "keras-aigc train path (configs/dcgan_mnist.yaml)"
BARE_ROW = "bare fit, constant batch"


def section_cli(dataset, steps, rounds, warmup, ablation=True):
    """The CLI path against bare fit, and (`ablation`) one of its parts at a time."""
    const = constant_batch(dataset)
    variants = {BARE_ROW: lambda: Fit(dataset=const), CLI_ROW: CLIPath}
    if ablation:
        variants.update({
            "bare fit, constant batch of unknown batch size": lambda: Fit(
                dataset=unknown_batch(dataset)),
            "bare fit on the CLI's data.load pipeline": lambda: Fit(dataset=cli_pipeline()),
            "bare fit on data.load(..., drop_remainder=True)": lambda: Fit(
                dataset=cli_pipeline(drop_remainder=True)),
            "bare fit + SampleGrid, TensorBoard, BackupAndRestore": lambda: Fit(
                dataset=const, callbacks=cli_callbacks),
            "CLI path without validation split": lambda: CLIPath(validation=False),
        })
    runners, cpu = {}, {}
    res = measure("float32", variants, steps, rounds, warmup, dataset, "cli ", runners=runners,
                  cpu=cpu)
    lines = [
        "#### The CLI path against bare fit (DCGAN tf_tutorial, batch 256, float32, 1 replica)",
        "",
        f"{rounds} interleaved rounds of {steps} timed steps per row after {warmup} warm-up "
        "steps; the first step of every `fit` call is not timed (shown apart below). Each "
        "ratio is the median over rounds of (row / bare fit of the same round), with its "
        "min-max range. Wall ratio: images/sec. CPU ratio: process CPU seconds per image "
        "of bare fit / of the row (all threads, tf.data included), which other processes on "
        "a shared machine do not change; on 2 cores that TF's intra-op threads keep busy, "
        "extra CPU work is extra wall time on an idle machine. The CLI row fits the model, "
        "datasets and callbacks that `keras_aigc.cli.train` builds for "
        "configs/dcgan_mnist.yaml, one epoch per round (as epochs 2.. of a run: no retrace).",
        "", f"Measured with {load()}.", "",
        "| run | images/sec (median) | wall ratio (median) | wall range | CPU ratio (median) "
        "| CPU range | rounds (images/sec) |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, (median, values) in res.items():
        wall = [v / b for v, b in zip(values, res[BARE_ROW][1], strict=True)]
        cpu_r = ([b / v for v, b in zip(cpu[name], cpu[BARE_ROW], strict=True)]
                 if name in cpu else None)
        cpu_cells = (f"{statistics.median(cpu_r):.3f}x | {min(cpu_r):.3f}-{max(cpu_r):.3f}"
                     if cpu_r else "- | -")
        lines.append(f"| {name} | {median:.1f} | {statistics.median(wall):.3f}x | "
                     f"{min(wall):.3f}-{max(wall):.3f} | {cpu_cells} | "
                     f"{', '.join(f'{v:.1f}' for v in values)} |")
    text = "\n".join(lines)
    cli = runners[CLI_ROW]
    # The warm-up epoch traced the test step; later epochs' end costs are what a run pays.
    costs = cli.epoch_costs[1:] or cli.epoch_costs
    costs_cpu = cli.epoch_costs_cpu[1:] or cli.epoch_costs_cpu
    epoch_cost, epoch_cpu = statistics.median(costs), statistics.median(costs_cpu)
    steps_per_epoch = -(-54000 // BATCH)
    step_cli, step_bare = BATCH / res[CLI_ROW][0], BATCH / res[BARE_ROW][0]
    full = steps_per_epoch * step_bare / (steps_per_epoch * step_cli + epoch_cost)
    cpu_cli = statistics.median(cpu[CLI_ROW]) * BATCH
    cpu_bare = statistics.median(cpu[BARE_ROW]) * BATCH
    full_cpu = steps_per_epoch * cpu_bare / (steps_per_epoch * cpu_cli + epoch_cpu)
    text += (f"\n\nPer-epoch work of the CLI (validation split of 6,000 images, sample grid, "
             f"TensorBoard, backup), from the last step to the end of the epoch: "
             f"{epoch_cost:.2f} s wall, {epoch_cpu:.2f} CPU-s (rounds after the first: "
             f"{', '.join(f'{c:.2f}' for c in costs)} s). Folded into a full MNIST epoch "
             f"({steps_per_epoch} steps) the CLI runs at **{full:.3f}x** bare fit (wall) and "
             f"**{full_cpu:.3f}x** (CPU).")
    firsts = {k: r.first_step for k, r in runners.items()
              if getattr(r, "first_step", None) is not None}
    if firsts:
        text += ("\n\nFirst step of the last `fit` call (iterator start, shuffle-buffer fill; "
                 "no tracing): " + "; ".join(f"{k}: {v:.2f} s" for k, v in firsts.items())
                 + ".")
    return text


def _cpu_seconds(fn, repeats):
    """Process CPU seconds (all threads) per call of `fn`, after one untimed call."""
    fn()
    c0 = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - c0) / repeats


def section_cli_parts(dataset, steps, rounds, warmup, batches=100, val_batches=6,
                      unknown=True):
    """The CLI path against bare `fit`, part by part, in process CPU time (all threads).

    CPU time is what a shared machine cannot distort (other processes change wall time,
    not the work done), and on 2 cores that TF's intra-op threads keep busy, extra CPU
    work is extra wall time on an idle machine. Parts:

    - the train step itself, on the constant batch with a static batch size (bare `fit`)
      and with an unknown batch size (what `data.load` without `drop_remainder`, the
      CLI's single-replica setting, declares), interleaved round by round;
    - the CLI's `data.load` pipeline per batch (with and without `drop_remainder`);
    - the CLI's callback hooks per batch (SampleGrid, TensorBoard, BackupAndRestore and
      the progress bar);
    - per-epoch work: the validation split (6,000 images; `val_batches` of it timed and
      scaled), and the callbacks' epoch ends (sample grid, TensorBoard, backup).

    Folded into one MNIST epoch (211 steps of 256) they give the CLI's ratio to bare fit.
    """
    import contextlib

    const = constant_batch(dataset)
    steps_rows = {"bare fit step, static batch size (constant batch)": Fit(dataset=const)}
    if unknown:
        steps_rows["fit step, unknown batch size (data.load without drop_remainder)"] = Fit(
            dataset=unknown_batch(dataset))
    # `steps=0`: only the CLI's extras (the step reference comes from another run).
    for r in steps_rows.values() if steps else ():
        r.timed(dataset, warmup)
    cpu_steps = {name: [float("nan")] for name in steps_rows} if not steps else {
        name: [] for name in steps_rows}
    for _ in range(rounds if steps else 0):
        for name, r in steps_rows.items():
            r.timed(dataset, steps)
            cpu_steps[name].append(r.cpu_per_image * BATCH)
            print(f"[train_speed] cli_parts {name}: {cpu_steps[name][-1]:.3f} CPU-s/step "
                  f"({load()})", file=sys.stderr, flush=True)
    static_name = next(iter(steps_rows))
    step = statistics.median(cpu_steps[static_name])
    # The CLI's training dataset declares a static batch size (drop_remainder=True on the
    # train split): its step graph is bare fit's, so its ratio is 1 unless measured.
    unknown_name = next((n for n in steps_rows if n != static_name), None)
    unknown_ratio = statistics.median(
        [u / s for u, s in zip(cpu_steps[unknown_name], cpu_steps[static_name], strict=True)]
    ) if unknown_name else 1.0
    per_step, per_epoch = [], []

    def pull(ds):
        it = iter(ds)
        return lambda: next(it)

    for name, ds in (("data.load pipeline as the CLI builds it (shuffle 54k, batch, scale, "
                      "prefetch)", cli_pipeline()),
                     ("the same with drop_remainder=True", cli_pipeline(drop_remainder=True)),
                     ("the benchmark's constant batch (bare fit's input)", const)):
        per_step.append((name, _cpu_seconds(pull(ds.repeat()), batches)))
    # Callback hooks of one training batch, as `fit` calls them (a CallbackList with the
    # progress bar; the logs are the model's metrics as tensors).
    model = steps_rows[static_name].model
    logs = {m.name: tf.constant(1.0) for m in model.metrics}
    epoch_logs = {m.name: 1.0 for m in model.metrics}
    for name, make in (("SampleGrid + TensorBoard + BackupAndRestore + progress bar hooks",
                        cli_callbacks),
                       ("progress bar hooks alone (verbose=1, non-interactive stdout)", list)):
        cbs = keras.callbacks.CallbackList(make(), add_history=True, add_progbar=True,
                                           model=model, verbose=1, epochs=1,
                                           steps=batches + 1)
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            cbs.on_train_begin()
            cbs.on_epoch_begin(0)
            counter = iter(range(10**9))

            def hooks(cbs=cbs, counter=counter):
                i = next(counter)
                cbs.on_train_batch_begin(i)
                cbs.on_train_batch_end(i, logs)

            per_step.append((name, _cpu_seconds(hooks, batches)))
            if make is cli_callbacks:
                c0 = time.process_time()
                for cb in cbs.callbacks:
                    if not isinstance(cb, (keras.callbacks.History,
                                           keras.callbacks.ProgbarLogger)):
                        cb.on_epoch_end(0, dict(epoch_logs))
                per_epoch.append(("epoch ends of SampleGrid (64 images, PNG), TensorBoard, "
                                  "BackupAndRestore (checkpoint)", time.process_time() - c0))
    val = cli_pipeline(split="validation", shuffle=False).take(val_batches).cache()
    model.evaluate(val, verbose=0)  # traces the test step
    c0 = time.process_time()
    model.evaluate(val, verbose=0)
    val_batches_total = -(-6000 // BATCH)
    per_epoch.append((f"validation split (6,000 images = {val_batches_total} batches; "
                      f"{val_batches} timed and scaled)",
                      (time.process_time() - c0) / val_batches * val_batches_total))

    steps_per_epoch = -(-54000 // BATCH)
    pipeline = per_step[0][1] - per_step[2][1]
    hooks_cost = per_step[3][1]
    cli_epoch = (steps_per_epoch * (step * unknown_ratio + pipeline + hooks_cost)
                 + sum(c for _, c in per_epoch))
    bare_epoch = steps_per_epoch * (step + per_step[2][1])
    lines = [
        "#### The CLI path against bare fit, part by part (process CPU time)",
        "",
        f"DCGAN tf_tutorial, batch {BATCH}, float32, 1 replica. Train steps: {rounds} "
        f"interleaved rounds of {steps} steps after {warmup} warm-up (first step of each "
        f"`fit` call not timed). Per-batch parts: {batches} batches after one untimed. "
        f"Measured with {load()}.", "",
        "| part | CPU-s | per | share of a bare step (per step) or of a bare epoch |",
        "|---|---:|---|---:|",
        f"| bare fit step, static batch size (reference; rounds "
        f"{', '.join(f'{c:.3f}' for c in cpu_steps[static_name])}) | {step:.3f} | step | "
        "1.000 |"]
    if unknown_name:
        lines.append(
            f"| fit step, unknown batch size (rounds "
            f"{', '.join(f'{c:.3f}' for c in cpu_steps[unknown_name])}) | "
            f"{step * unknown_ratio:.3f} | step | {unknown_ratio:.3f} (median of paired "
            "rounds) |")
    for name, sec in per_step:
        lines.append(f"| {name} | {sec:.5f} | batch | {sec / step:.4f} |")
    for name, sec in per_epoch:
        lines.append(f"| {name} | {sec:.2f} | epoch | {sec / bare_epoch:.4f} |")
    lines += ["", f"One MNIST epoch ({steps_per_epoch} steps): bare fit {bare_epoch:.0f} CPU-s, "
              f"the CLI path {cli_epoch:.0f} CPU-s (steps "
              f"{'x the unknown-batch ratio ' if unknown_name else '(static batch, as bare) '}"
              f"+ pipeline minus the constant input + callback hooks, plus the per-epoch "
              f"rows): the CLI at "
              f"**{bare_epoch / cli_epoch:.3f}x** bare fit."]
    return "\n".join(lines)


def section_cli_pair(dataset, steps, rounds, warmup):
    """Only the two rows of `cli` that decide the target: bare fit and `run()`."""
    return section_cli(dataset, steps, rounds, warmup, ablation=False)


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


SECTIONS = {"update": section_update, "cli": section_cli, "cli_pair": section_cli_pair,
            "cli_parts": section_cli_parts,
            "cli_parts_static": lambda *a: section_cli_parts(*a, val_batches=3, unknown=False),
            "cli_extras": lambda d, s, r, w: section_cli_parts(d, 0, r, w, val_batches=3,
                                                               unknown=False),
            "precision": section_precision,
            "syncbn": section_syncbn, "precision_dcgan": section_precision_dcgan}


# What `run_all.py` (no --sections) measures; the other sections are subsets or the
# expensive wall-time variants of these.
DEFAULT_SECTIONS = ("update", "cli_parts", "precision")


def run(steps=3, rounds=3, warmup=1, sections=DEFAULT_SECTIONS, stream=sys.stdout,
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
    p.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                   help=f"Comma-separated subset of {list(SECTIONS)} (default: "
                        f"{','.join(DEFAULT_SECTIONS)}).")
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

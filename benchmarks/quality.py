"""Quality benchmark: recipes trained within a CPU budget, scored with the standard FID network.

    python benchmarks/quality.py floor [--num 10000]
    python benchmarks/quality.py train CONFIG RUN_DIR [--budget-minutes 60] [--set K=V ...]
                                     [--fit-decay]
    python benchmarks/quality.py evaluate RUN_DIR [--model model.keras] [--num 10000]
    python benchmarks/quality.py table            # benchmarks/results/quality.jsonl -> Markdown

`floor` is the pipeline check: MNIST train (first `--num`) against the 10k test images, with
the FID Inception network (expected ~1.64), and uniform noise against test (expected ~424).
`train` runs `keras-aigc train` in this process and stops it when the process has used
`--budget-minutes` of CPU time (user + sys, all cores; "one hour on 2 cores" = 120), saving
the model after every epoch. `evaluate` generates `--num` samples and scores them against the
test split: FID, KID and precision/recall on the standard network's features (the test
features are cached, keyed by their sha256). Each `evaluate`/`floor` appends a row with the
exact command, budget, machine load and commit to `benchmarks/results/quality.jsonl`.

Needs the FID weights: `KERAS_AIGC_FID_WEIGHTS=.../weights.npz` and MNIST:
`KERAS_AIGC_MNIST=.../mnist.npz` (the configs' `npz:` path is relative to the repo's parent).
"""

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results", "quality.jsonl")
ANCHORS = {"DCGAN": "NS-GAN 6.8", "WGANGP": "WGAN-GP 20.3 (WGAN 6.7)",
           "SNGAN": "NS-GAN 6.8", "ConditionalGAN": "NS-GAN 6.8 (unconditional)"}


def _cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _mnist():
    path = os.environ.get("KERAS_AIGC_MNIST",
                          os.path.join(ROOT, "..", "shared", "data", "mnist.npz"))
    return "npz:" + os.path.abspath(path)


def _append(row):
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    row = {**row, "commit": _commit(), "command": " ".join(shlex.quote(a) for a in sys.argv),
           "load_avg": [round(v, 1) for v in os.getloadavg()],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(RESULTS, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=2))


def _extractor():
    from keras_aigc.metrics.features import FIDInception

    return FIDInception(batch_size=50)


def _test_features(extractor):
    from keras_aigc import data
    from keras_aigc.metrics.features import reference_features

    x, _, _ = data.load_arrays(_mnist(), "test")
    feats, info = reference_features(extractor, x, value_range=(0.0, 255.0),
                                     stream=sys.stderr)
    return feats, info


def _scores(real, fake, seed=0):
    from keras_aigc import metrics as m

    rs = m.FeatureStatistics.from_features(real, batch_size=1000)
    fs = m.FeatureStatistics.from_features(fake, batch_size=1000)
    fid = m.frechet_distance(rs.mean, rs.covariance, fs.mean, fs.covariance)
    kid, kid_std = m.kernel_inception_distance(real, fake, seed=seed)
    pr = m.precision_recall(real, fake)
    return {"fid": float(fid), "kid": float(kid), "kid_std": float(kid_std),
            "precision": float(pr["precision"]), "recall": float(pr["recall"])}


def floor(args):
    t0, c0 = time.time(), _cpu_seconds()
    extractor = _extractor()
    test, info = _test_features(extractor)
    with np.load(_mnist()[4:]) as d:
        train = d["x_train"][:args.num, ..., None]
    from keras_aigc.metrics.features import reference_features

    train_feats, _ = reference_features(extractor, train, stream=sys.stderr)
    row = {"name": "floor: MNIST train vs test", "num_generated": int(len(train)),
           "num_real": int(len(test)), "network": extractor.name, **_scores(test, train_feats)}
    if args.noise:
        noise = np.random.default_rng(0).integers(0, 256, (args.noise, 28, 28, 1), np.uint8)
        noise_feats = extractor(noise, value_range=(0, 255))
        row["fid_uniform_noise"] = _scores(test, noise_feats)["fid"]
        row["num_noise"] = int(args.noise)
    row.update(eval_cpu_minutes=round((_cpu_seconds() - c0) / 60, 1),
               eval_wall_minutes=round((time.time() - t0) / 60, 1))
    _append(row)


def _optimizers(model):
    """`(name, optimizer)` of a model's one or two optimizers."""
    found = [(n, getattr(model, n, None)) for n in ("g_optimizer", "d_optimizer", "optimizer")]
    return [(n, o) for n, o in found if o is not None and hasattr(o, "iterations")]


def _lr_fraction(optimizer):
    """The optimizer's current learning rate over its schedule's initial one (or None)."""
    schedule = getattr(optimizer, "_learning_rate", None)
    initial = getattr(schedule, "initial_learning_rate", None)
    if not initial or not callable(schedule):
        return None
    return float(schedule(optimizer.iterations)) / float(initial)


def _check_decay(model, steps_per_epoch, train_steps_done, epoch_cpu_s, remaining_cpu_s,
                 warn=True):
    """Projects the optimizer steps left in the budget from the CPU cost of `steps_per_epoch`
    train steps (`epoch_cpu_s`) and warns when a schedule's `decay_steps` misses the
    projected total by more than 10%: the recipes decay the learning rate to 0 over the
    budget, so decay_steps depends on the machine's step cost.
    Returns {optimizer: (decay_steps, projected steps)}."""
    if not steps_per_epoch or epoch_cpu_s <= 0:
        return {}
    out = {}
    for name, opt in _optimizers(model):
        decay = getattr(getattr(opt, "_learning_rate", None), "decay_steps", None)
        if not decay:
            continue
        done = int(opt.iterations.numpy())
        per_step = epoch_cpu_s / steps_per_epoch  # CPU-s per train step
        # Optimizer steps per train step (2 for a critic with d_steps=2), from its counter.
        ratio = done / max(1, train_steps_done)
        projected = int(done + remaining_cpu_s / per_step * ratio)
        out[name] = (int(decay), projected)
        if warn and abs(decay - projected) > 0.1 * projected:
            print(f"\nquality.py: {name} decays its learning rate over {decay} steps, but the "
                  f"budget projects ~{projected} on this machine ({per_step * 1000:.0f} "
                  f"CPU-ms per train step in epoch 2): the learning rate will end at "
                  f"{'a fraction of its start' if decay > projected else '0 before the end'}. "
                  f"Restart with decay_steps ~{projected}, or pass --fit-decay.",
                  file=sys.stderr, flush=True)
    return out


def _fit_decay(model, projected, tolerance=0.02):
    """Sets each schedule's `decay_steps` to the steps the budget projects (from
    `_check_decay`) when they differ by more than `tolerance`, and retraces the train
    function so that the new value takes effect: `PolynomialDecay`/`CosineDecay` read
    `decay_steps` as a Python number when the step is traced. Returns {optimizer: new
    decay_steps} for the schedules it changed."""
    changed = {}
    for name, opt in _optimizers(model):
        schedule = getattr(opt, "_learning_rate", None)
        if name not in projected or not getattr(schedule, "decay_steps", None):
            continue
        decay, target = projected[name]
        done = int(opt.iterations.numpy())
        target = max(target, done + 1)
        if abs(decay - target) > tolerance * target:
            schedule.decay_steps = int(target)
            changed[name] = int(target)
    if changed:
        model.make_train_function(force=True)
    return changed


class _Budget:
    """Stops `fit` once this process has used `minutes` of CPU time; logs each epoch."""

    def __new__(cls, *args, **kwargs):
        import keras

        class Budget(keras.callbacks.Callback):
            def __init__(self, run_dir, minutes, fit_decay=False):
                super().__init__()
                self.run_dir, self.limit = run_dir, minutes * 60.0
                self.t0, self.c0 = time.time(), _cpu_seconds()
                self.projected, self.lr_end, self.train_steps = {}, {}, 0
                self.fit_decay, self.fitted = fit_decay, []
                self.warm = None  # (CPU-s used, train steps) when epoch 2 began

            def _used(self):
                return _cpu_seconds() - self.c0

            def on_train_end(self, logs=None):
                self.lr_end = {name: _lr_fraction(opt) for name, opt in _optimizers(self.model)}

            def on_train_batch_end(self, batch, logs=None):
                self.train_steps += 1
                if self._used() >= self.limit:
                    self.model.stop_training = True

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch_c0 = self._used()
                if epoch == 1:
                    self.warm = (self._used(), self.train_steps)

            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:  # the second epoch: traced, warm, and a whole one
                    steps = self.params.get("steps")
                    self.projected = _check_decay(self.model, steps, self.train_steps,
                                                  self._used() - self.epoch_c0,
                                                  self.limit - self._used(),
                                                  warn=not self.fit_decay)
                if self.fit_decay and epoch >= 1 and self._used() < self.limit:
                    # The mean cost per step since epoch 2 began (warm, validation and
                    # checkpoints included) projects the steps left in the budget; after
                    # epoch 2 that is the projection just recorded.
                    cpu, steps = self._used() - self.warm[0], self.train_steps - self.warm[1]
                    projected = self.projected if epoch == 1 else _check_decay(
                        self.model, steps, self.train_steps, cpu, self.limit - self._used(),
                        warn=False)
                    changed = _fit_decay(self.model, projected)
                    if changed:
                        self.fitted.append({"epoch": epoch + 1, "decay_steps": changed})
                        print(f"\nquality.py: decay_steps -> {changed} (fitted to the budget "
                              f"after epoch {epoch + 1})", file=sys.stderr, flush=True)
                path = os.path.join(self.run_dir, f"epoch_{epoch + 1:03d}.keras")
                self.model.save(path + ".tmp.keras")
                os.replace(path + ".tmp.keras", path)
                with open(os.path.join(self.run_dir, "cpu_log.jsonl"), "a") as f:
                    f.write(json.dumps({
                        "epoch": epoch + 1, "cpu_s": self._used(),
                        "wall_s": time.time() - self.t0, "load": os.getloadavg(),
                        **{k: float(v) for k, v in (logs or {}).items()}}) + "\n")

        return Budget(*args, **kwargs)


def train(args):
    from keras_aigc.cli import config as config_lib
    from keras_aigc.cli import train as train_lib

    overrides = [f"data.source={_mnist()}", "training.verbose=2", *args.overrides]
    config = config_lib.load_config(args.config, overrides)
    budget = _Budget(args.run_dir, args.budget_minutes, fit_decay=args.fit_decay)
    train_lib.run(config, args.run_dir, extra_callbacks=[budget])
    with open(os.path.join(args.run_dir, "budget.json"), "w") as f:
        json.dump({"config": args.config, "budget_cpu_minutes": args.budget_minutes,
                   "train_cpu_minutes": round(budget._used() / 60, 1),
                   "train_wall_minutes": round((time.time() - budget.t0) / 60, 1),
                   "load_avg_end": os.getloadavg(), "train_steps": budget.train_steps,
                   # {optimizer: [decay_steps, steps projected from epoch 2's CPU cost]}
                   "decay_steps_vs_projected": budget.projected,
                   # The learning rate at the end over its initial value (0: fully decayed).
                   "lr_end_fraction": budget.lr_end,
                   # --fit-decay: [{epoch, {optimizer: decay_steps set after that epoch}}]
                   "decay_steps_fitted": budget.fitted}, f, indent=2)


def evaluate(args):
    import keras

    import keras_aigc.models  # noqa: F401 - registers the classes

    t0, c0 = time.time(), _cpu_seconds()
    model = keras.models.load_model(os.path.join(args.run_dir, args.model))
    extractor = _extractor()
    num_classes = getattr(model, "num_classes", None)
    generator = model.generator if args.raw_generator else None
    images = []
    for i, start in enumerate(range(0, args.num, 500)):
        n = min(500, args.num - start)
        labels = (np.arange(start, start + n) % num_classes) if num_classes else None
        if generator is None:
            kwargs = {"labels": labels} if labels is not None else {}
            images.append(model.generate(n, seed=args.seed * 1_000_003 + i, **kwargs))
        else:
            z = model.latents(n, seed=args.seed * 1_000_003 + i)
            inputs = z if labels is None else [z, labels.astype("int32")]
            images.append(np.asarray(generator(inputs, training=False), np.float32))
    images = np.concatenate(images)
    fake = extractor(images, value_range=tuple(model.value_range))
    # Saved beside the checkpoint first, so a failure below does not lose the features.
    np.save(os.path.join(args.run_dir, f"{os.path.splitext(args.model)[0]}"
                                       f"{'_raw' if args.raw_generator else ''}"
                                       f"_fid_features_{args.num}_seed{args.seed}.npy"), fake)
    test, _ = _test_features(extractor)  # cached (or being cached by another process)
    row = {"name": f"{type(model).__name__}"
                   + (" (raw generator, no EMA)" if args.raw_generator else ""),
           "run_dir": os.path.abspath(args.run_dir), "model_file": args.model,
           "num_generated": int(len(fake)), "num_real": int(len(test)),
           "network": extractor.name, **_scores(test, fake, seed=args.seed),
           "eval_cpu_minutes": round((_cpu_seconds() - c0) / 60, 1),
           "eval_wall_minutes": round((time.time() - t0) / 60, 1)}
    budget_path = os.path.join(args.run_dir, "budget.json")  # one JSON object (indented)
    if os.path.isfile(budget_path):
        with open(budget_path) as f:
            row["budget"] = json.load(f)
    log_path = os.path.join(args.run_dir, "cpu_log.jsonl")  # one JSON object per line
    if os.path.isfile(log_path):
        with open(log_path) as f:
            row["cpu_log"] = [json.loads(x) for x in f if x.strip()][-1]
    epoch = args.model.split("_")[-1].split(".")[0] if args.model.startswith("epoch_") else None
    if epoch and os.path.isfile(os.path.join(args.run_dir, "cpu_log.jsonl")):
        with open(os.path.join(args.run_dir, "cpu_log.jsonl")) as f:
            for x in f:
                entry = json.loads(x)
                if entry.get("epoch") == int(epoch):
                    row["train_cpu_minutes"] = round(entry["cpu_s"] / 60, 1)
                    row["train_wall_minutes"] = round(entry["wall_s"] / 60, 1)
                    row["epochs"] = int(epoch)
    _append(row)


def table(args):
    del args
    rows = []
    if os.path.isfile(RESULTS):
        with open(RESULTS) as f:
            rows = [json.loads(x) for x in f if x.strip()]
    out = ["| run | FID | KID x1e3 | precision | recall | train CPU-min (wall) | anchor "
           "(Lucic et al. 2018) | commit |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        model = r["name"].split(" ")[0]
        out.append(
            f"| {r['name']} | {r['fid']:.2f} | {1e3 * r['kid']:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r.get('train_cpu_minutes', '-')} "
            f"({r.get('train_wall_minutes', '-')}) | {ANCHORS.get(model, 'floor 1.64')} | "
            f"{r['commit']} |")
    text = "\n".join(out)
    print(text)
    path = os.environ.get("KERAS_AIGC_BENCH_MARKDOWN")
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("floor")
    f.add_argument("--num", type=int, default=10000)
    f.add_argument("--noise", type=int, default=10000,
                   help="Uniform-noise images for the upper check (0: skip).")
    f.set_defaults(fn=floor)
    t = sub.add_parser("train")
    t.add_argument("config")
    t.add_argument("run_dir")
    t.add_argument("--budget-minutes", type=float, default=120.0,
                   help="CPU minutes (user+sys over all cores); 60 wall-min on 2 cores = 120.")
    t.add_argument("--set", dest="overrides", action="append", default=[])
    t.add_argument("--fit-decay", action="store_true",
                   help="After every epoch from the second, set each learning-rate "
                        "schedule's decay_steps to the steps the remaining budget projects "
                        "at the measured CPU cost per step (the recipes decay to 0 over the "
                        "budget, and the step cost depends on the machine).")
    t.set_defaults(fn=train)
    e = sub.add_parser("evaluate")
    e.add_argument("run_dir")
    e.add_argument("--model", default="model.keras")
    e.add_argument("--num", type=int, default=10000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--raw-generator", action="store_true",
                   help="Score the trained generator instead of its EMA copy.")
    e.set_defaults(fn=evaluate)
    sub.add_parser("table").set_defaults(fn=table)
    args = p.parse_args(argv)
    args.fn(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

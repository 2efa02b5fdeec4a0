"""Test NLL of a Bernoulli VAE on dynamically binarized MNIST, against Burda et al. 2015.

Trains a VAE with plain `model.fit` on MNIST binarized afresh each epoch, then estimates
`-log p(x)` with `log_likelihood(x, num_samples=k)` (k=5000 by default) on the test
images binarized once with a fixed seed. Prints the architecture, the CPU-minutes of
training (process user+sys, all threads), wall times and the NLL next to the published
anchors (Burda, Grosse & Salakhutdinov 2015, Table 1, 1 stochastic layer: VAE 86.76,
IWAE k=50 84.78 nats; 2 layers 82.90).

Two ways to choose the model:
- `--config configs/vae_mnist_quality.yaml`: the config's `model` section and its base
  learning rate (the quality recipe). With `--cpu-minutes M` training stops once the
  process has used M CPU-minutes, and the learning rate follows a cosine from the base
  to 10% over the fraction of that budget used (`--wall-minutes W` also caps wall time;
  the fraction is then the larger of the two, so the schedule completes either way).
  `--checkpoint-every C` saves the weights every C CPU-minutes; each checkpoint is then
  evaluated on the first `--trend-test` test images, giving NLL against CPU-minutes.
- otherwise the MLP `VAE` of the flags below (`--hidden`, `--latent-dim`, ...).

The evaluation runs in slices of 500 images and rewrites `--json` after each slice, so an
interrupted evaluation still leaves the NLL of the images it finished. With `--record`,
one row (NLL, k, images, CPU-minutes, command, commit, load) is appended to
`benchmarks/results/vae_nll.jsonl`.

    python benchmarks/vae_nll.py --config configs/vae_mnist_quality.yaml --cpu-minutes 120 \
        --checkpoint-every 10 --record                                  # the quality row
    python benchmarks/vae_nll.py --epochs 20 --num-test 10000          # MLP, full evaluation
    python benchmarks/vae_nll.py --epochs 2 --num-test 500 --k 5000     # quick look
"""

import argparse
import json
import math
import os
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import quality  # noqa: E402 - the GAN quality script's CPU-time and commit helpers

ROOT = os.path.dirname(HERE)
RECORDS = os.path.join(HERE, "results", "vae_nll.jsonl")
ANCHORS = {"VAE, 1 layer (Burda et al. 2015)": 86.76,
           "IWAE k=50, 1 layer (Burda et al. 2015)": 84.78,
           "IWAE k=50, 2 layers (Burda et al. 2015)": 82.90}
EVAL_SLICE = 500


def cpu_seconds():
    """User + system CPU seconds of this process (all its threads)."""
    return quality._cpu_seconds()


def _commit():
    return quality._commit()


def budget_callback(cpu_minutes, wall_minutes, base_lr, checkpoint_every, out_dir):
    """A Keras callback: cosine learning rate over the used fraction of the budget,
    stop when it is spent, weights saved every `checkpoint_every` CPU-minutes."""
    import keras

    class CPUBudget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.cpu0, self.wall0 = cpu_seconds(), time.time()
            self.checkpoints, self.next_ckpt = [], checkpoint_every
            self.log = []

        def used(self):
            return (cpu_seconds() - self.cpu0) / 60.0, (time.time() - self.wall0) / 60.0

        def fraction(self):
            cpu, wall = self.used()
            frac = cpu / cpu_minutes if cpu_minutes else 0.0
            if wall_minutes:
                frac = max(frac, wall / wall_minutes)
            return frac

        def on_train_batch_begin(self, batch, logs=None):
            frac = min(self.fraction(), 1.0)
            lr = base_lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * frac)))
            self.model.optimizer.learning_rate.assign(lr)

        def on_train_batch_end(self, batch, logs=None):
            cpu, _ = self.used()
            if checkpoint_every and cpu >= self.next_ckpt:
                path = os.path.join(out_dir, f"ckpt_{self.next_ckpt:g}cpumin.weights.h5")
                self.model.save_weights(path)
                self.checkpoints.append({"cpu_minutes": round(cpu, 2), "path": path,
                                         "step": int(self.model.optimizer.iterations)})
                self.next_ckpt += checkpoint_every
            if self.fraction() >= 1.0:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            cpu, wall = self.used()
            row = {"epoch": epoch + 1, "cpu_minutes": round(cpu, 2),
                   "wall_minutes": round(wall, 2), "load": os.getloadavg(),
                   **{k: float(v) for k, v in (logs or {}).items()}}
            self.log.append(row)
            print(json.dumps(row), flush=True)

    return CPUBudget()


def evaluate(model, x, k, batch, seed, label, progress=None):
    """Mean NLL over `x` in slices; `progress(ll_so_far)` after each slice."""
    import numpy as np

    lls = []
    t0, c0 = time.time(), cpu_seconds()
    for start in range(0, len(x), EVAL_SLICE):
        lls.append(model.log_likelihood(x[start:start + EVAL_SLICE], num_samples=k,
                                        batch_size=batch, chunk_size=max(1, 8192 // batch),
                                        seed=seed + start))
        ll = np.concatenate(lls)
        print(f"  [{label}] {len(ll)}/{len(x)} images: NLL {-ll.mean():.3f} "
              f"({time.time() - t0:.0f} s wall, {(cpu_seconds() - c0) / 60:.1f} CPU-min)",
              flush=True)
        if progress is not None:
            progress(ll)
    return np.concatenate(lls)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=os.environ.get("KERAS_AIGC_MNIST",
                                                     "../shared/data/mnist.npz"))
    p.add_argument("--config", default=None,
                   help="YAML config whose model section (and base learning rate) to train.")
    p.add_argument("--cpu-minutes", type=float, default=None,
                   help="Stop training after this many process CPU-minutes.")
    p.add_argument("--wall-minutes", type=float, default=None,
                   help="Also stop training after this many wall minutes.")
    p.add_argument("--checkpoint-every", type=float, default=0.0,
                   help="Save weights every this many CPU-minutes (0: off).")
    p.add_argument("--trend-test", type=int, default=1000,
                   help="Test images for the NLL of each checkpoint.")
    p.add_argument("--out", default=None, help="Directory for checkpoints and weights.")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--latent-dim", type=int, default=50)
    p.add_argument("--hidden", default="200,200", help="Hidden widths, comma separated.")
    p.add_argument("--activation", default="tanh")
    p.add_argument("--objective", default="elbo", choices=["elbo", "iwae"])
    p.add_argument("--iwae-samples", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=0, help="KL warm-up steps (0: off).")
    p.add_argument("--k", type=int, default=5000, help="Importance samples for the NLL.")
    p.add_argument("--num-test", type=int, default=10000, help="Test images evaluated.")
    p.add_argument("--eval-batch", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="Also write the results to this file.")
    p.add_argument("--evaluate-weights", nargs="+", default=None, metavar="WEIGHTS_H5",
                   help="Skip training: evaluate these saved weights of the --config model "
                        "(e.g. the run's checkpoints) on the first --num-test images.")
    p.add_argument("--record", action="store_true",
                   help=f"Append the result row to {os.path.relpath(RECORDS, ROOT)}.")
    args = p.parse_args(argv)
    if args.cpu_minutes is not None and args.cpu_minutes <= 0:
        p.error(f"--cpu-minutes must be > 0, got {args.cpu_minutes}.")
    if args.checkpoint_every and args.cpu_minutes is None:
        p.error("--checkpoint-every needs --cpu-minutes.")

    import keras
    import numpy as np

    import keras_aigc as ka

    if not os.path.exists(args.mnist):
        raise FileNotFoundError(f"MNIST not found at {os.path.abspath(args.mnist)!r}; pass "
                                "--mnist or set KERAS_AIGC_MNIST.")
    source = f"npz:{args.mnist}"
    out_dir = args.out or os.path.join(HERE, "results", "vae_nll_run")
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    model_cfg, batch_size, base_lr = None, args.batch_size, args.learning_rate
    if args.config:
        from keras_aigc.cli import config as config_lib

        config = config_lib.load_config(args.config)
        model_cfg = dict(config["model"])
        batch_size = int(config["data"].get("batch_size", batch_size))
        opt = ((config.get("compile") or {}).get("optimizer") or {}).get("config") or {}
        lr = opt.get("learning_rate", base_lr)
        base_lr = float(lr["config"]["initial_learning_rate"] if isinstance(lr, dict) else lr)

    # All 60,000 training images (no validation split), binarized afresh every epoch.
    train, info = ka.data.load(source, split="train", batch_size=batch_size,
                               scaling="sigmoid", binarize="dynamic", validation_fraction=0.0,
                               deduplicate=False, seed=args.seed, with_info=True)
    x_test, _, _ = ka.data.load_arrays(source, split="test", deduplicate=False)
    rng = np.random.default_rng(12345)  # one fixed binarization of the test set
    x_test = (rng.random(x_test.shape) < x_test / 255.0).astype(np.float32)
    x_test = x_test[:args.num_test]

    if model_cfg is not None:
        name = model_cfg.pop("name")
        model_cfg.setdefault("image_shape", list(info.image_shape))
        model_cfg.setdefault("seed", args.seed)
        vae = ka.models.get(name)(**model_cfg)
        arch = (f"{name}({', '.join(f'{k}={v}' for k, v in model_cfg.items())}) from "
                f"{args.config}; Adam {base_lr} cosine to 10%, batch {batch_size}")
    else:
        hidden = tuple(int(h) for h in args.hidden.split(",") if h)
        vae = ka.models.VAE(image_shape=info.image_shape, latent_dim=args.latent_dim,
                            hidden_units=hidden, activation=args.activation,
                            likelihood="bernoulli", objective=args.objective,
                            iwae_samples=args.iwae_samples, seed=args.seed)
        arch = (f"784-{'-'.join(map(str, hidden))}-{args.latent_dim} ({args.activation}), "
                f"diagonal Gaussian q, N(0, I) prior, Bernoulli p(x|z); "
                f"objective={args.objective}(k={args.iwae_samples}); Adam "
                f"{args.learning_rate} cosine to 10%, batch {batch_size}")

    if args.evaluate_weights:
        vae.compile()
        result = {"architecture": arch, "config": args.config, "k": args.k, "trend": [],
                  "commit": _commit(), "load_avg_start": list(os.getloadavg()),
                  "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])}
        for path in args.evaluate_weights:
            vae.load_weights(path)
            ll = evaluate(vae, x_test, args.k, args.eval_batch, 2, os.path.basename(path))
            result["trend"].append({"weights": path, "num_test": len(ll),
                                    "nll": float(-ll.mean()),
                                    "nll_stderr": float(ll.std() / np.sqrt(len(ll)))})
            result["load_avg_end"] = list(os.getloadavg())
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(result, f, indent=2)
        return result

    callbacks = [ka.callbacks.KLWarmup(args.warmup_steps)] if args.warmup_steps else []
    if args.cpu_minutes is not None:
        budget = budget_callback(args.cpu_minutes, args.wall_minutes, base_lr,
                                 args.checkpoint_every, out_dir)
        callbacks.append(budget)
        vae.compile(optimizer=keras.optimizers.Adam(base_lr))
        epochs = 100000  # the budget stops training
    else:
        budget = None
        steps = math.ceil(info.num_examples / batch_size) * args.epochs
        lr = keras.optimizers.schedules.CosineDecay(base_lr, steps, alpha=0.1)
        vae.compile(optimizer=keras.optimizers.Adam(lr))
        epochs = args.epochs
    print(f"architecture: {arch}")
    print(f"parameters: {vae.count_params()}; train images: {info.num_examples}, test "
          f"images: {len(x_test)}; budget: {args.cpu_minutes} CPU-min, "
          f"{args.wall_minutes} wall-min", flush=True)

    load_start = os.getloadavg()
    c0, t0 = cpu_seconds(), time.time()
    history = vae.fit(train, epochs=epochs, verbose=2, callbacks=callbacks)
    train_cpu_min = (cpu_seconds() - c0) / 60.0
    train_s = time.time() - t0
    load_end = os.getloadavg()
    epochs_done = len(history.history["elbo"])
    vae.save_weights(os.path.join(out_dir, "final.weights.h5"))
    print(f"\ntrained {epochs_done} epochs, {int(vae.optimizer.iterations)} steps: "
          f"{train_cpu_min:.1f} CPU-min, {train_s / 60:.1f} wall-min; load average "
          f"{load_start[0]:.1f} -> {load_end[0]:.1f}", flush=True)

    result = {"architecture": arch, "config": args.config, "epochs": epochs_done,
              "steps": int(vae.optimizer.iterations), "train_cpu_minutes": train_cpu_min,
              "train_seconds": train_s, "k": args.k, "num_test": 0,
              "final_train_elbo": float(history.history["elbo"][-1]),
              "load_avg_train": [list(load_start), list(load_end)], "anchors": ANCHORS,
              "commit": _commit(),
              "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])}
    if budget is not None:
        result["epoch_log"] = budget.log

    def write():
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            tmp = args.json + ".tmp"
            with open(tmp, "w") as f:
                json.dump(result, f, indent=2)
            os.replace(tmp, args.json)

    t0, c0 = time.time(), cpu_seconds()
    elbo = vae.elbo(x_test, num_samples=1, batch_size=500, seed=1)
    result["test_neg_elbo"] = float(-elbo.mean())

    def progress(ll):
        result.update({"num_test": len(ll), "test_nll": float(-ll.mean()),
                       "test_nll_stderr": float(ll.std() / np.sqrt(len(ll))),
                       "eval_seconds": time.time() - t0,
                       "eval_cpu_minutes": (cpu_seconds() - c0) / 60.0})
        write()

    ll = evaluate(vae, x_test, args.k, args.eval_batch, 2, "final", progress)
    nll, stderr = result["test_nll"], result["test_nll_stderr"]
    print(f"\ntraining: {train_cpu_min:.1f} CPU-min ({train_s / 60:.1f} wall-min, "
          f"{epochs_done} epochs); eval (k={args.k}, {len(ll)} images): "
          f"{result['eval_seconds'] / 60:.1f} wall-min, {result['eval_cpu_minutes']:.1f} "
          "CPU-min")
    print(f"test -ELBO: {-elbo.mean():.2f} nats; test NLL (k={args.k}, {len(ll)} images): "
          f"{nll:.2f} +- {stderr:.2f} nats")
    for name, value in ANCHORS.items():
        print(f"  vs {name}: {value:.2f} nats -> ours/anchor = {nll / value:.3f} "
              f"({nll - value:+.2f} nats)")
    result["load_avg_end"] = list(os.getloadavg())
    write()
    if args.record:
        os.makedirs(os.path.dirname(RECORDS), exist_ok=True)
        row = {k: v for k, v in result.items() if k not in ("epoch_log", "anchors")}
        row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with open(RECORDS, "a") as f:
            f.write(json.dumps(row) + "\n")
    # NLL against CPU-minutes: the checkpoints on the first --trend-test images (after the
    # final evaluation, so that a deadline cuts the trend rather than the headline).
    if budget is not None and budget.checkpoints:
        trend_x = x_test[:args.trend_test]
        result["trend"] = []
        for ckpt in budget.checkpoints:
            vae.load_weights(ckpt["path"])
            ll = evaluate(vae, trend_x, args.k, args.eval_batch, 2,
                          f"{ckpt['cpu_minutes']:.1f} CPU-min")
            result["trend"].append({**ckpt, "num_test": len(ll), "nll": float(-ll.mean())})
            write()
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)

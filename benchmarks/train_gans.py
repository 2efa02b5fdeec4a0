"""Train DCGAN, WGANGP, SNGAN and ConditionalGAN on MNIST for a fixed budget each.

For every model: training throughput (images/sec, first epoch excluded when there is more
than one, since it includes tracing), its ratio to the DCGAN reference run in the same
script, a sample grid PNG and 10,000 generated images as uint8 `.npy` (for the
evaluation issue's FID/KID). Results go to `<output>/results.json` and a Markdown table.

    python benchmarks/train_gans.py --epochs 10                 # the full budget
    python benchmarks/train_gans.py --epochs 1 --steps-per-epoch 20 --num-generated 500
"""

import argparse
import json
import os
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

import keras_aigc
from keras_aigc import data, models
from keras_aigc.utils import save_grid, to_uint8

MNIST = os.environ.get("KERAS_AIGC_MNIST", "../shared/data/mnist.npz")
REFERENCE = "DCGAN"


def build(name):
    """Each family at its paper/tutorial defaults for 28x28 MNIST."""
    if name == "DCGAN":
        return models.DCGAN.from_preset("tf_tutorial", seed=0)
    if name == "WGANGP":
        return models.WGANGP(image_shape=(28, 28, 1), seed=0)
    if name == "SNGAN":
        return models.SNGAN(image_shape=(28, 28, 1), seed=0)
    if name == "ConditionalGAN":
        return models.ConditionalGAN(num_classes=10, image_shape=(28, 28, 1), seed=0)
    raise ValueError(f"Unrecognized model={name!r}. Supported: {MODELS}.")


MODELS = ("DCGAN", "WGANGP", "SNGAN", "ConditionalGAN")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def run_one(name, args):
    keras.utils.set_random_seed(0)
    conditional = name == "ConditionalGAN"
    ds, info = data.load(f"npz:{args.data}", split="train", batch_size=args.batch_size,
                         labels=conditional, drop_remainder=True, with_info=True)
    steps = args.steps_per_epoch or info.num_examples // args.batch_size
    model = build(name)
    model.compile()
    timer = EpochTimer()
    history = model.fit(ds, epochs=args.epochs, steps_per_epoch=steps, callbacks=[timer],
                        verbose=args.verbose)
    timed = timer.times[1:] if len(timer.times) > 1 else timer.times
    images_per_sec = steps * args.batch_size * len(timed) / sum(timed)

    out_dir = os.path.join(args.output, name)
    os.makedirs(out_dir, exist_ok=True)
    grid_labels = {"labels": np.arange(100) % 10} if conditional else {}
    save_grid(model.generate(100, seed=0, **grid_labels), os.path.join(out_dir, "samples.png"),
              value_range=model.value_range, rows=10)
    gen_labels = {"labels": np.arange(args.num_generated) % 10} if conditional else {}
    pixels = to_uint8(model.generate(args.num_generated, seed=1, **gen_labels),
                      model.value_range)
    np.save(os.path.join(out_dir, "generated_uint8.npy"), pixels)
    if conditional:
        np.save(os.path.join(out_dir, "generated_labels.npy"), gen_labels["labels"])
    return {
        "model": name,
        "epochs": args.epochs,
        "steps_per_epoch": steps,
        "batch_size": args.batch_size,
        "d_steps": model.d_steps,
        "train_seconds": float(sum(timer.times)),
        "images_per_sec": float(images_per_sec),
        "final_logs": {k: float(v[-1]) for k, v in history.history.items()},
        "generated": os.path.join(out_dir, "generated_uint8.npy"),
        "grid": os.path.join(out_dir, "samples.png"),
    }


def write_table(results, path):
    ref = next((r for r in results if r["model"] == REFERENCE), None)
    lines = ["| model | d_steps | epochs x steps | images/sec | vs DCGAN | d_loss | g_loss |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        ratio = r["images_per_sec"] / ref["images_per_sec"] if ref else float("nan")
        lines.append(
            f"| {r['model']} | {r['d_steps']} | {r['epochs']} x {r['steps_per_epoch']} | "
            f"{r['images_per_sec']:.0f} | {ratio:.2f}x | {r['final_logs']['d_loss']:.3f} | "
            f"{r['final_logs']['g_loss']:.3f} |")
    text = "\n".join(lines) + "\n"
    with open(path, "w") as f:
        f.write(text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="Epochs per model (default 10).")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="Cap on steps per epoch (default: the whole training split).")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-generated", type=int, default=10000,
                   help="Images saved as uint8 .npy per model (default 10000).")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--data", default=MNIST, help="Path to mnist.npz.")
    p.add_argument("--output", default="benchmarks/results/train_gans")
    p.add_argument("--verbose", type=int, default=2)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}.")
    if not os.path.isfile(args.data):
        raise FileNotFoundError(f"MNIST not found at {os.path.abspath(args.data)!r}; pass "
                                "--data or set KERAS_AIGC_MNIST.")
    models_to_run = list(args.models)
    if REFERENCE in models_to_run:  # the reference runs first
        models_to_run.remove(REFERENCE)
        models_to_run.insert(0, REFERENCE)
    results = []
    for name in models_to_run:
        print(f"== {name}", flush=True)
        results.append(run_one(name, args))
        print(json.dumps(results[-1], indent=1), flush=True)
    os.makedirs(args.output, exist_ok=True)
    meta = {"keras_aigc": keras_aigc.__version__, "tensorflow": tf.__version__,
            "keras": keras.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "argv": sys.argv[1:]}
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print(write_table(results, os.path.join(args.output, "results.md")))


if __name__ == "__main__":
    main()

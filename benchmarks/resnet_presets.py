"""Parameter counts and training images/sec of the ResNet presets on this machine.

    nice -n 10 python benchmarks/resnet_presets.py --batch-size 16 --steps 3

One `fit` of `--steps` steps after a 1-step warm-up (tracing excluded), on random images;
GAN rows count one generator update (with `d_steps` D updates) per step. Each row gives
images per wall second and per CPU second of this process (all its threads): on a shared
machine the second does not depend on how much of the CPU the process was given. Rows are
also appended to `--out` (default benchmarks/results/resnet_presets.jsonl) with the CPU
model, thread count and load average.
"""

import argparse
import json
import os
import time

import numpy as np
from run_all import _cpu_model  # benchmarks/ is on sys.path when run as a script


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--models", nargs="+",
                   default=["ResNetGAN:resnet32", "ResNetGAN:resnet64", "ResNetGAN:resnet128",
                            "ResNetVAE:resnet64"])
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "results", "resnet_presets.jsonl"))
    args = p.parse_args()
    import tensorflow as tf

    from keras_aigc import models

    for spec in args.models:
        name, arch = spec.split(":")
        model = models.MODELS[name](architecture=arch, seed=0)
        if not model.built:
            model.build()
        model.compile()
        h, w, c = model.image_shape
        low = 0.0 if name.endswith("VAE") else -1.0
        x = np.random.default_rng(0).uniform(low, 1, (args.batch_size, h, w, c)).astype("float32")
        if getattr(model, "likelihood", None) == "bernoulli":
            x = np.round(x)  # the Bernoulli likelihood checks its pixels are in {0, 1}
        ds = tf.data.Dataset.from_tensors(x).repeat()
        model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
        start, cpu0 = time.perf_counter(), time.process_time()
        model.fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
        images = args.batch_size * args.steps
        row = {"model": spec, "batch_size": args.batch_size, "steps": args.steps,
               "train_images_per_sec": round(images / seconds, 2),
               "train_images_per_cpu_sec": round(images / cpu, 3),
               "cpu": _cpu_model(), "intra_op_threads": tf.config.threading
               .get_intra_op_parallelism_threads(), "load_average": os.getloadavg()}
        if name.endswith("GAN"):
            row["g_params"] = model.generator.count_params()
            row["d_params"] = model.discriminator.count_params()
        else:
            row["params"] = model.count_params()
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

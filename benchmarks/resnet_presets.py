"""Parameter counts and training images/sec of the ResNet presets on this machine.

    nice -n 10 python benchmarks/resnet_presets.py --batch-size 16 --steps 3

One `fit` of `--steps` steps after a 1-step warm-up (tracing excluded), on random images;
GAN rows count one generator update (with `d_steps` D updates) per step.
"""

import argparse
import json
import time

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--models", nargs="+",
                   default=["ResNetGAN:resnet32", "ResNetGAN:resnet64", "ResNetGAN:resnet128",
                            "ResNetVAE:resnet64"])
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
        ds = tf.data.Dataset.from_tensors(x).repeat()
        model.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
        start = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=args.steps, verbose=0)
        seconds = time.perf_counter() - start
        row = {"model": spec, "batch_size": args.batch_size,
               "train_images_per_sec": round(args.batch_size * args.steps / seconds, 2)}
        if name.endswith("GAN"):
            row["g_params"] = model.generator.count_params()
            row["d_params"] = model.discriminator.count_params()
        else:
            row["params"] = model.count_params()
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Test NLL of a Gated PixelCNN on dynamically binarized MNIST against CPU time, and its
sampling speed (row-cached fast path vs the whole network per pixel) and, with
`--export-speed`, the exported sampler's speed through the TF-free runtime (ONNX Runtime's
Loop and LiteRT's WHILE) against Keras on the same noise.

Trains `keras_aigc.models.PixelCNN(distribution="bernoulli")` with `model.fit` on MNIST
binarized afresh each epoch until a budget of process CPU-minutes is spent, then computes
the exact `-log p(x)` of the full test set (10,000 images, binarized once with a fixed
seed). Anchors (van den Oord et al. 2016, Table 4): PixelCNN 81.30, Gated PixelCNN 79.20.

    nice -n 10 python benchmarks/pixelcnn_nll.py --cpu-minutes 60
    python benchmarks/pixelcnn_nll.py --cpu-minutes 0 --num-test 500 --export-speed
"""

import argparse
import json
import os
import sys
import time

ANCHORS = {"PixelCNN (van den Oord et al. 2016)": 81.30,
           "Gated PixelCNN (van den Oord et al. 2016)": 79.20}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=os.environ.get("KERAS_AIGC_MNIST",
                                                     "../shared/data/mnist.npz"))
    p.add_argument("--cpu-minutes", type=float, default=60.0,
                   help="Training budget in process CPU-minutes (checked every 50 steps).")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--filters", type=int, default=32)
    p.add_argument("--num-layers", type=int, default=5)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--decay-to-zero", action="store_true",
                   help="Lower the learning rate linearly with the CPU time spent, from "
                        "--learning-rate to 0 when the budget ends (set before every step, "
                        "so it fits the budget on any CPU without a step-count estimate).")
    p.add_argument("--num-test", type=int, default=10000)
    p.add_argument("--sample-images", type=int, default=4,
                   help="Images for the fast-vs-naive sampling speed comparison.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export-speed", action="store_true",
                   help="Also export the model (SavedModel, TFLite, ONNX) and time its "
                        "sampler in keras_aigc_runtime against Keras on the same noise.")
    p.add_argument("--json", default=None)
    p.add_argument("--save", default=None,
                   help="Save the trained model here (.keras), e.g. for `keras-aigc finetune`.")
    args = p.parse_args(argv)

    import keras
    import numpy as np

    import keras_aigc as ka

    source = f"npz:{args.mnist}"
    keras.utils.set_random_seed(args.seed)
    train, info = ka.data.load(source, split="train", batch_size=args.batch_size,
                               scaling="sigmoid", binarize="dynamic", validation_fraction=0.0,
                               deduplicate=False, seed=args.seed, with_info=True)
    x_test, _, _ = ka.data.load_arrays(source, split="test", deduplicate=False)
    rng = np.random.default_rng(12345)
    x_test = (rng.random(x_test.shape) < x_test / 255.0).astype(np.float32)[:args.num_test]

    model = ka.models.PixelCNN(info.image_shape, distribution="bernoulli",
                               filters=args.filters, num_layers=args.num_layers)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    budget = args.cpu_minutes * 60.0
    cpu0 = time.process_time()

    class Budget(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if args.decay_to_zero and budget > 0:
                left = max(0.0, 1.0 - (time.process_time() - cpu0) / budget)
                self.model.optimizer.learning_rate.assign(args.learning_rate * left)

        def on_train_batch_end(self, batch, logs=None):
            if batch % 50 == 0 and time.process_time() - cpu0 > budget:
                self.model.stop_training = True

    t0 = time.time()
    history = model.fit(train.repeat(), epochs=1000, steps_per_epoch=200, verbose=2,
                        callbacks=[Budget()])
    train_cpu, train_wall = time.process_time() - cpu0, time.time() - t0
    steps = int(model.optimizer.iterations.numpy())
    if args.save:
        os.makedirs(os.path.dirname(os.path.abspath(args.save)), exist_ok=True)
        model.save(args.save)
        print(f"saved the trained model to {args.save}")

    t0 = time.time()
    ll = model.log_likelihood(x_test, batch_size=500)
    eval_s = time.time() - t0
    nll, stderr = float(-ll.mean()), float(ll.std() / np.sqrt(len(ll)))

    noise = model.noise(args.sample_images, seed=1)
    speeds = {}
    for fast in (True, False):
        model.sample_from_noise(noise[:1], fast=fast)  # trace
        t0 = time.time()
        images = model.sample_from_noise(noise, fast=fast)
        speeds["fast" if fast else "naive"] = args.sample_images / (time.time() - t0)
        speeds[f"images_{fast}"] = images
    same = bool(np.array_equal(speeds.pop("images_True"), speeds.pop("images_False")))

    exported = export_speed(model, noise, speeds["fast"]) if args.export_speed else None

    schedule = " linearly to 0 over the CPU budget" if args.decay_to_zero else ""
    arch = (f"Gated PixelCNN, {args.num_layers} blocks x {args.filters} filters, 7x7 first, "
            f"3x3 after; Bernoulli; Adam {args.learning_rate}{schedule}, batch {args.batch_size}")
    print(f"\n{arch}")
    print(f"trained {steps} steps ({steps * args.batch_size / 60000:.2f} epochs) in "
          f"{train_cpu / 60:.1f} CPU-min ({train_wall / 60:.1f} wall-min)")
    print(f"test NLL (exact, {len(x_test)} images): {nll:.2f} +- {stderr:.2f} nats "
          f"({nll / (784 * np.log(2)):.4f} bits/dim); eval {eval_s:.0f} s")
    for name, value in ANCHORS.items():
        print(f"  vs {name}: {value:.2f} nats ({nll - value:+.2f})")
    print(f"sampling, batch {args.sample_images}: fast {speeds['fast']:.3f} img/s, naive "
          f"{speeds['naive']:.3f} img/s, ratio {speeds['fast'] / speeds['naive']:.1f}x; "
          f"identical images: {same}")
    if exported:
        for backend, row in exported.items():
            print(f"exported sampler, {backend}: {row['images_per_s']:.3f} img/s, "
                  f"{row['ratio_to_keras_fast']:.2f}x Keras fast; identical images to Keras: "
                  f"{row['identical_to_keras']}")
    result = {"architecture": arch, "steps": steps, "train_cpu_minutes": train_cpu / 60,
              "train_wall_minutes": train_wall / 60, "test_nll": nll,
              "test_nll_stderr": stderr, "num_test": len(x_test), "eval_seconds": eval_s,
              "sampling_images_per_s": speeds, "fast_equals_naive": same,
              "final_train_nll": float(history.history["nll"][-1]), "anchors": ANCHORS,
              "final_learning_rate": float(model.optimizer.learning_rate.numpy()),
              "exported_sampling": exported}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


def export_speed(model, noise, keras_fast_images_per_s):
    """Exports `model` to a temporary bundle (SavedModel, TFLite, ONNX; each file checked
    against Keras by the exporter) and times the `generate` signature, the whole sampling
    loop inside the file, through `keras_aigc_runtime` on `noise`. Returns
    `{backend: {images_per_s, ratio_to_keras_fast, identical_to_keras}}`."""
    import tempfile

    import numpy as np

    import keras_aigc_runtime
    from keras_aigc.export import export_bundle

    reference = model.sample_from_noise(noise)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle = os.path.join(tmp, "bundle")
        t0 = time.time()
        export_bundle(model, bundle, formats=("saved_model", "tflite", "onnx"), seed=0,
                      serving_batch_sizes=())
        print(f"export (three formats, each verified at batches 1 and 7): "
              f"{time.time() - t0:.0f} s")
        for backend in ("onnx", "tflite"):
            g = keras_aigc_runtime.load(bundle, backend=backend)
            g.run({"noise": noise[:1]}, "generate")  # warm-up
            t0 = time.time()
            images = g.run({"noise": noise}, "generate")["image"]
            speed = len(noise) / (time.time() - t0)
            rows[backend] = {"images_per_s": speed,
                             "ratio_to_keras_fast": speed / keras_fast_images_per_s,
                             "identical_to_keras": bool(np.array_equal(images, reference))}
    return rows


if __name__ == "__main__":
    main()
    sys.exit(0)

"""Test NLL of a Bernoulli VAE on dynamically binarized MNIST, against Burda et al. 2015.

Trains `keras_aigc.models.VAE` with plain `model.fit` on MNIST binarized afresh each epoch,
then estimates `-log p(x)` with `log_likelihood(x, num_samples=k)` (k=5000 by default) on
the test images binarized once with a fixed seed. Prints the architecture, epochs, wall
times and the NLL next to the published anchors (Burda, Grosse & Salakhutdinov 2015,
Table 1, 1 stochastic layer: VAE 86.76, IWAE k=50 84.78 nats).

    python benchmarks/vae_nll.py --epochs 20 --num-test 10000          # full evaluation
    python benchmarks/vae_nll.py --epochs 2 --num-test 500 --k 5000     # quick look
"""

import argparse
import json
import math
import os
import sys
import time

ANCHORS = {"VAE, 1 layer (Burda et al. 2015)": 86.76,
           "IWAE k=50, 1 layer (Burda et al. 2015)": 84.78,
           "IWAE k=50, 2 layers (Burda et al. 2015)": 82.90}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=os.environ.get("KERAS_AIGC_MNIST",
                                                     "../shared/data/mnist.npz"))
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
    args = p.parse_args(argv)

    import keras
    import numpy as np

    import keras_aigc as ka

    if not os.path.exists(args.mnist):
        raise FileNotFoundError(f"MNIST not found at {os.path.abspath(args.mnist)!r}; pass "
                                "--mnist or set KERAS_AIGC_MNIST.")
    source = f"npz:{args.mnist}"
    keras.utils.set_random_seed(args.seed)
    # All 60,000 training images (no validation split), binarized afresh every epoch.
    train, info = ka.data.load(source, split="train", batch_size=args.batch_size,
                               scaling="sigmoid", binarize="dynamic", validation_fraction=0.0,
                               deduplicate=False, seed=args.seed, with_info=True)
    x_test, _, _ = ka.data.load_arrays(source, split="test", deduplicate=False)
    rng = np.random.default_rng(12345)  # one fixed binarization of the test set
    x_test = (rng.random(x_test.shape) < x_test / 255.0).astype(np.float32)
    x_test = x_test[:args.num_test]

    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    vae = ka.models.VAE(image_shape=info.image_shape, latent_dim=args.latent_dim,
                        hidden_units=hidden, activation=args.activation,
                        likelihood="bernoulli", objective=args.objective,
                        iwae_samples=args.iwae_samples, seed=args.seed)
    steps = math.ceil(info.num_examples / args.batch_size) * args.epochs
    lr = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps, alpha=0.1)
    vae.compile(optimizer=keras.optimizers.Adam(lr))
    callbacks = [ka.callbacks.KLWarmup(args.warmup_steps)] if args.warmup_steps else []
    arch = (f"784-{'-'.join(map(str, hidden))}-{args.latent_dim} ({args.activation}), "
            f"diagonal Gaussian q, N(0, I) prior, Bernoulli p(x|z); objective={args.objective}"
            f"(k={args.iwae_samples}); Adam {args.learning_rate} cosine to 10%, "
            f"batch {args.batch_size}")
    print(f"architecture: {arch}")
    print(f"train images: {info.num_examples}, test images: {len(x_test)}, "
          f"epochs: {args.epochs}", flush=True)

    t0 = time.time()
    history = vae.fit(train, epochs=args.epochs, verbose=2, callbacks=callbacks)
    train_s = time.time() - t0

    t0 = time.time()
    elbo = vae.elbo(x_test, num_samples=1, batch_size=500, seed=1)
    ll = vae.log_likelihood(x_test, num_samples=args.k, batch_size=args.eval_batch, seed=2)
    eval_s = time.time() - t0
    nll = float(-ll.mean())
    stderr = float(ll.std() / np.sqrt(len(ll)))
    print(f"\ntrain wall time: {train_s:.0f} s ({train_s / args.epochs:.1f} s/epoch); "
          f"eval wall time (k={args.k}, {len(x_test)} images): {eval_s:.0f} s")
    print(f"test -ELBO: {-elbo.mean():.2f} nats; test NLL (k={args.k}): {nll:.2f} "
          f"+- {stderr:.2f} nats")
    for name, value in ANCHORS.items():
        print(f"  vs {name}: {value:.2f} nats -> ours/anchor = {nll / value:.3f} "
              f"({nll - value:+.2f} nats)")
    result = {"architecture": arch, "epochs": args.epochs, "train_seconds": train_s,
              "eval_seconds": eval_s, "k": args.k, "num_test": len(x_test),
              "test_nll": nll, "test_nll_stderr": stderr, "test_neg_elbo": float(-elbo.mean()),
              "final_train_elbo": float(history.history["elbo"][-1]), "anchors": ANCHORS}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)

"""Reward fine-tuning toward one digit: the share of samples the domain classifier assigns to
the target class before and after `keras-aigc finetune`, the KL to the pretrained model, and
the wall and CPU time (issue 15).

Runs the CLI's own code path (`keras_aigc.cli.finetune.run`, the reward `classifier_prob`
from the registry) on a trained PixelCNN, then draws `--num-eval` samples from the
pretrained and from the fine-tuned policy with the same seed, classifies them with the
domain classifier (argmax), and estimates KL(policy || pretrained) in nats per image as the
mean of the exact `log p_policy(x) - log p_ref(x)` over the policy's samples.
Goal: from about 10% to >= 90% of one digit with KL <= 20 nats per image.

    python benchmarks/pixelcnn_nll.py --cpu-minutes 60 --save /tmp/pixelcnn.keras
    python benchmarks/reward_finetune.py --model /tmp/pixelcnn.keras --target 3

Without `--classifier`, the domain classifier is trained first (`keras-aigc train-features`,
2 epochs on the MNIST train split, into `--out`/features).
"""

import argparse
import json
import os
import sys
import time


def share_and_logp(policy, reference, classifier, target, n, seed, batch_size):
    """Samples `n` images from `policy`; returns (share of `target`, mean classifier prob of
    `target`, per-image log p_policy, per-image log p_reference)."""
    import keras
    import numpy as np

    images = np.asarray(policy.generate(n, seed=seed, batch_size=batch_size))
    low, high = getattr(classifier, "value_range", (0.0, 1.0))
    logits = np.asarray(classifier.predict(images * (high - low) + low, batch_size=500,
                                           verbose=0), np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    share = float(np.mean(probs.argmax(-1) == target))
    logp = np.asarray(policy.log_likelihood(images, batch_size=batch_size), np.float64)
    logq = np.asarray(reference.log_likelihood(images, batch_size=batch_size), np.float64)
    del keras
    return share, float(probs[:, target].mean()), logp, logq


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="Trained PixelCNN (.keras).")
    p.add_argument("--classifier", default=None,
                   help="Domain classifier (.keras); trained first when omitted.")
    p.add_argument("--mnist", default=os.environ.get("KERAS_AIGC_MNIST"))
    p.add_argument("--target", type=int, default=3)
    p.add_argument("--kl-weight", type=float, default=0.05)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=100, help="Steps per epoch.")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--num-eval", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reward_finetune_run")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if not os.path.isfile(args.model):
        p.error(f"--model {args.model!r} does not exist; train one with "
                "benchmarks/pixelcnn_nll.py --save PATH or keras-aigc train "
                "configs/pixelcnn_mnist.yaml.")
    if args.classifier is None and not (args.mnist and os.path.isfile(args.mnist)):
        p.error("without --classifier the domain classifier is trained on MNIST: set "
                "--mnist or KERAS_AIGC_MNIST to an mnist.npz.")
    for name in ("steps", "epochs", "num_eval", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}.")

    import keras
    import numpy as np

    import keras_aigc.models  # noqa: F401 - registers the model classes
    from keras_aigc.cli import finetune

    os.makedirs(args.out, exist_ok=True)
    classifier_path = args.classifier
    if classifier_path is None:
        from keras_aigc.metrics.features import train_domain_classifier

        features_dir = os.path.join(args.out, "features")
        _, record = train_domain_classifier(f"npz:{args.mnist}", directory=features_dir,
                                            epochs=2, seed=args.seed, verbose=2)
        classifier_path = os.path.join(features_dir, "domain_classifier.keras")
        print(f"domain classifier: test accuracy {record['test_accuracy']:.4f}")
    classifier = keras.models.load_model(classifier_path)
    reference = keras.models.load_model(args.model)

    share0, prob0, logp0, _ = share_and_logp(reference, reference, classifier, args.target,
                                             args.num_eval, args.seed + 1, 250)
    print(f"before: {share0:.3f} of {args.num_eval} samples are {args.target}s "
          f"(mean classifier prob {prob0:.3f}); mean log p {logp0.mean():.2f} nats")

    config = {"model": {"path": os.path.abspath(args.model)},
              "reward": {"name": "classifier_prob", "target": args.target,
                         "classifier": os.path.abspath(classifier_path)},
              "finetune": {"kl_weight": args.kl_weight, "baseline": "moving_average",
                           "batch_size": args.batch_size, "steps": args.steps,
                           "epochs": args.epochs, "learning_rate": args.learning_rate,
                           "seed": args.seed, "verbose": 2}}
    run_dir = os.path.join(args.out, "finetune")
    cpu0, t0 = time.process_time(), time.time()
    _, history = finetune.run(config, run_dir)
    train_wall, train_cpu = time.time() - t0, time.process_time() - cpu0

    policy = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    share1, prob1, logp1, logq1 = share_and_logp(policy, reference, classifier, args.target,
                                                 args.num_eval, args.seed + 1, 250)
    kl = logp1 - logq1
    kl_mean, kl_err = float(kl.mean()), float(kl.std() / np.sqrt(len(kl)))
    steps = args.steps * args.epochs
    print(f"\nfine-tuned {steps} steps x {args.batch_size} samples (kl_weight "
          f"{args.kl_weight}, Adam {args.learning_rate}) in {train_wall / 60:.1f} wall-min "
          f"({train_cpu / 60:.1f} CPU-min)")
    print(f"share of {args.target}s: {share0:.3f} -> {share1:.3f} (mean classifier prob "
          f"{prob0:.3f} -> {prob1:.3f}); KL(policy || pretrained) {kl_mean:.2f} +- "
          f"{kl_err:.2f} nats per image (goal: >= 0.90 with KL <= 20)")
    result = {"target": args.target, "num_eval": args.num_eval, "share_before": share0,
              "share_after": share1, "prob_before": prob0, "prob_after": prob1,
              "kl_nats": kl_mean, "kl_stderr": kl_err, "steps": steps,
              "batch_size": args.batch_size, "kl_weight": args.kl_weight,
              "learning_rate": args.learning_rate, "train_wall_minutes": train_wall / 60,
              "train_cpu_minutes": train_cpu / 60, "history": history,
              "model": args.model, "classifier": classifier_path}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)

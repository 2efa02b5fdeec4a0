"""`keras-aigc evaluate RUN_DIR`: sample-quality metrics (GANs) or likelihoods (VAEs)."""

import json
import os
import sys
import time

import numpy as np
import yaml

FEATURES = ("fid", "domain", "inception")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="Compute metrics of a trained run and write metrics.json.",
        description="GANs: FID, KID, improved precision/recall (and the Inception Score and, "
                    "for conditional models, the classifier's accuracy on samples) on the "
                    "chosen features against the test split. VAEs: test ELBO and "
                    "importance-sampled NLL. Writes RUN_DIR/metrics.json.")
    p.add_argument("run_dir", help="A directory written by `keras-aigc train`.")
    p.add_argument("--num-samples", type=int, default=10000,
                   help="Generated samples (GANs) or test examples (VAEs); real sets are "
                        "capped by the test split size. Default: 10000.")
    p.add_argument("--features", choices=FEATURES, default=None,
                   help="Feature extractor for GAN metrics: fid (the standard 2015 Inception "
                        "graph of published FIDs), domain (a fast download-free classifier "
                        "of the data) or inception (Keras' ImageNet InceptionV3, FID-like). "
                        "Default: fid when its weights are available (--fid-weights or "
                        "KERAS_AIGC_FID_WEIGHTS), else domain.")
    p.add_argument("--fid-weights", default=None,
                   help="weights.npz of the standard FID network (or set "
                        "KERAS_AIGC_FID_WEIGHTS).")
    p.add_argument("--fid-download", action="store_true",
                   help="Download the published converted FID weights (sha256 checked) when "
                        "none are given.")
    p.add_argument("--cache-dir", default=None,
                   help="Cache of real-data features (default: $KERAS_AIGC_CACHE or "
                        "~/.keras/keras_aigc).")
    p.add_argument("--features-dir", default=None,
                   help="Directory of a domain classifier (default: RUN_DIR/features, then "
                        "the cache of the data source written by `keras-aigc "
                        "train-features`).")
    p.add_argument("--inception-weights", default=None,
                   help="Path of the no-top InceptionV3 .h5 weights (or set "
                        "KERAS_AIGC_INCEPTION_WEIGHTS).")
    p.add_argument("--nll-samples", type=int, default=100,
                   help="Importance samples per example for the VAE NLL (default: 100).")
    p.add_argument("--batch-size", type=int, default=500, help="Batch size (default: 500).")
    p.add_argument("--seed", type=int, default=0, help="Sampling seed (default: 0).")
    p.add_argument("--output", default=None,
                   help="Where to write the JSON (default: RUN_DIR/metrics.json).")
    p.set_defaults(func=main)
    return p


def load_run(run_dir):
    """Returns `(model, config dict, data_info dict)` of a run directory."""
    from keras_aigc.cli.paths import load_model, resolve_model_path

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run_dir={run_dir!r} is not a directory. Pass a directory "
                                "written by `keras-aigc train`.")
    model_path = resolve_model_path(run_dir)
    config, info = {}, {}
    config_path = os.path.join(run_dir, "config.yaml")
    if os.path.isfile(config_path):
        with open(config_path) as f:
            config = yaml.safe_load(f) or {}
    info_path = os.path.join(run_dir, "data_info.json")
    if os.path.isfile(info_path):
        with open(info_path) as f:
            info = json.load(f)
    if not (config.get("data") or {}).get("source"):
        raise ValueError(f"run_dir={run_dir!r}: config.yaml has no data.source, so the test "
                         "split to compare against is unknown.")
    return load_model(model_path), config, info


def evaluation_of(model):
    """`model.evaluation` of a `GenerativeModel`: `"likelihood"` (test ELBO and NLL) or
    `"samples"` (FID, KID, precision/recall of generated images)."""
    from keras_aigc.models.base import EVALUATIONS, GenerativeModel

    if not isinstance(model, GenerativeModel):
        raise ValueError(f"Cannot evaluate a {type(model).__name__}: expected a "
                         "keras_aigc.models.GenerativeModel.")
    if model.evaluation not in EVALUATIONS:
        raise ValueError(f"{type(model).__name__}.evaluation={model.evaluation!r}; supported "
                         f"evaluations are {list(EVALUATIONS)}.")
    return model.evaluation


def _split_kwargs(config):
    from keras_aigc.cli.train_features import split_kwargs

    return split_kwargs(dict(config.get("data") or {}))


def get_extractor(args, config):
    from keras_aigc.metrics import features

    fid_weights = getattr(args, "fid_weights", None)
    fid_download = getattr(args, "fid_download", False)
    if args.features is None:
        # The standard network when it is available, unless a domain classifier was named.
        args.features = ("fid" if not args.features_dir and (
            fid_download or features.fid_weights_available(fid_weights)) else "domain")
    if args.features == "fid":
        return features.FIDInception(weights=fid_weights, download=fid_download)
    if args.features == "inception":
        return features.InceptionFeatures(weights=args.inception_weights)
    data = config["data"]
    candidates = [args.features_dir] if args.features_dir else [
        os.path.join(args.run_dir, "features"),
        features.default_directory(data["source"], **_split_kwargs(config)),
    ]
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, features.domain_features.MODEL_FILE)):
            return features.DomainFeatures.load(directory)
    raise FileNotFoundError(
        f"No domain classifier for data source {data['source']!r} (looked in "
        f"{candidates}). Train one with `keras-aigc train-features "
        f"{os.path.join(args.run_dir, 'config.yaml')}`, or pass --features inception.")


def _progbar(total, label):
    import keras

    print(label, file=sys.stderr)
    return keras.utils.Progbar(total, unit_name="sample")


def evaluate_gan(model, config, args):
    from keras_aigc import data
    from keras_aigc import metrics as m

    extractor = get_extractor(args, config)
    real, _, _ = data.load_arrays(config["data"]["source"], "test", **_split_kwargs(config))
    rng = np.random.default_rng(args.seed)
    if args.num_samples < len(real):
        # A random subset; the whole split keeps its order, so its cached features match.
        real = real[rng.permutation(len(real))[:args.num_samples]]
    real_feats, cache = m.features.reference_features(
        extractor, real, value_range=(0.0, 255.0),
        cache_dir=getattr(args, "cache_dir", None), stream=sys.stderr)

    num_classes = model.num_classes
    value_range = tuple(model.value_range)
    fake_stats = m.FeatureStatistics()
    fake_feats, probs, labels_all = [], [], []
    bar = _progbar(args.num_samples, f"Generating and featurizing {args.num_samples} samples")
    for i, start in enumerate(range(0, args.num_samples, args.batch_size)):
        n = min(args.batch_size, args.num_samples - start)
        labels = None
        if num_classes is not None:  # the classes in turn across the whole sample
            labels = model.normalize_labels(None, start + n)[start:]
            labels_all.append(labels)
        images = model.generate(n, seed=args.seed * 1_000_003 + i, labels=labels)
        feats = extractor(images, value_range=value_range)
        fake_stats.update(feats)
        fake_feats.append(feats)
        if hasattr(extractor, "probabilities"):
            probs.append(extractor.probabilities(images, value_range=value_range))
        bar.add(n)
    fake_feats = np.concatenate(fake_feats)

    real_stats = m.FeatureStatistics.from_features(real_feats)
    for name, count in (("real (test split)", real_stats.count),
                        ("generated", fake_stats.count)):
        m._checks.warn_few_samples(count, extractor.dim, f"The {name} set")
    kid, kid_std = m.kernel_inception_distance(real_feats, fake_feats, seed=args.seed)
    pr = m.precision_recall(real_feats, fake_feats)
    out = {
        "fid": m.frechet_distance(real_stats.mean, real_stats.covariance, fake_stats.mean,
                                  fake_stats.covariance),
        "kid": kid, "kid_std": kid_std,
        "precision": pr["precision"], "recall": pr["recall"],
        "num_real": int(len(real_feats)), "num_generated": int(len(fake_feats)),
        "features": extractor.name, "feature_dim": int(extractor.dim),
        "features_preprocessing": getattr(extractor, "preprocessing", None),
        "reference_cache": cache["cache"],
    }
    if probs:
        probs = np.concatenate(probs)
        splits = 10 if len(probs) >= 10 else 1
        out["inception_score"], out["inception_score_std"] = m.inception_score(probs, splits)
        info = getattr(extractor, "info", {})
        if "test_accuracy" in info:
            out["classifier_test_accuracy"] = info["test_accuracy"]
        if num_classes:
            labels = np.concatenate(labels_all)
            out["classifier_accuracy_on_samples"] = float(
                np.mean(np.argmax(probs, axis=1) == labels))
    return out


def _call_per_example(fn, x, y, **kwargs):
    if y is not None:
        kwargs["labels"] = y
    return np.asarray(fn(x, **kwargs), np.float64).reshape(-1)


def evaluate_vae(model, config, args):
    import keras_aigc.data.loader as loader
    from keras_aigc import data
    from keras_aigc.cli.config import check_kwargs

    data_kwargs = {k: v for k, v in dict(config["data"]).items()
                   if k not in ("shuffle", "with_info")}
    check_kwargs("data", data_kwargs, loader.load)
    source = data_kwargs.pop("source")
    data_kwargs["batch_size"] = min(args.batch_size, int(data_kwargs.get("batch_size", 128)))
    data_kwargs["labels"] = True
    ds = data.load(source, split="test", shuffle=False, **data_kwargs)
    conditional = model.num_classes is not None
    exact = model.exact_likelihood  # autoregressive models: exact log-likelihood, no ELBO
    elbos, lls = [], []
    what = "Exact NLL" if exact else f"ELBO and {args.nll_samples}-sample NLL"
    bar = _progbar(args.num_samples, f"{what} on up to {args.num_samples} test examples")
    seen = 0
    for x, y in ds:
        if seen >= args.num_samples:
            break
        take = min(len(x), args.num_samples - seen)
        x, y = x[:take], (y[:take] if conditional else None)
        if not exact:
            elbos.append(_call_per_example(model.elbo, x, y))
        lls.append(_call_per_example(model.log_likelihood, x, y,
                                     **({} if exact else {"num_samples": args.nll_samples})))
        seen += take
        bar.add(take)
    elbo = np.concatenate(elbos) if elbos else None
    ll = np.concatenate(lls)
    return {
        "test_elbo": None if elbo is None else float(elbo.mean()),
        "test_nll": float(-ll.mean()),
        "test_nll_std_error": float(ll.std(ddof=1) / np.sqrt(len(ll))) if len(ll) > 1 else None,
        # The model's own conversion (a Gaussian likelihood adds its pixel-bin width).
        "test_nll_bits_per_dim": float(model.bits_per_dim_from_log_likelihood(ll.mean())),
        "nll_importance_samples": None if exact else args.nll_samples,
        "nll_method": "exact" if exact else "importance_sampled",
        "num_test_examples": int(len(ll)),
        "units": "nats per example (ELBO, NLL); bits per dimension",
    }


def run(args, stream=None):
    stream = stream or sys.stdout
    for name, minimum in (("num_samples", 2), ("nll_samples", 1), ("batch_size", 1)):
        value = getattr(args, name)
        if value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {minimum}, "
                             f"got {value}.")
    model, config, info = load_run(args.run_dir)
    evaluation = evaluation_of(model)
    t0 = time.perf_counter()
    results = (evaluate_gan(model, config, args) if evaluation == "samples"
               else evaluate_vae(model, config, args))
    results = {
        "model": type(model).__name__, "kind": model.family, "evaluation": evaluation, "run_dir": os.path.abspath(args.run_dir),
        "data_source": config["data"]["source"], "seed": args.seed, **results,
        "wall_time_s": round(time.perf_counter() - t0, 2),
    }
    path = args.output or os.path.join(args.run_dir, "metrics.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2), file=stream)
    print(f"\nWrote {path}", file=stream)
    return results


def main(args):
    run(args)
    return 0

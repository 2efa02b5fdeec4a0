"""What `keras-aigc train` shows while it trains: FID in the progress bar and TensorBoard,
sample grids as TensorBoard images, and the resolved config through the hparams plugin.

The training keys (see `TrainingConfig`):

- `fid_every`: epochs between FID measurements; `None` (default) follows `sample_every`,
  `0` turns FID off.
- `fid_features`: which network's features the FID uses:
  `"auto"` (default) the domain classifier of the data source when one exists (in
  `<run>/features` or the cache `keras-aigc train-features` writes), otherwise FID is off
  and the run prints how to turn it on; `"domain"` the same but missing is an error;
  `"standard"` the standard FID Inception network (`keras_aigc.metrics.features.
  FIDInception`, weights from `KERAS_AIGC_FID_WEIGHTS`), slower on a CPU; `"off"` (YAML
  also reads a bare `off` as `false`, which means the same).
- `fid_samples`: generated images per measurement (default 1000) against the test split.

The FID is logged as `fid` in the epoch logs, so the progress bar, `history.json` and the
TensorBoard scalar `epoch_fid` (run `train`) all carry it, on the epochs it is measured.
"""

import os

FID_FEATURES = ("auto", "domain", "standard", "off")


def check_training_values(section):
    """Checks the values of the monitoring keys of a `training:` section."""
    from keras_aigc.cli.config import ConfigError

    features = section.get("fid_features", "auto")
    if features is not False and features not in FID_FEATURES:
        raise ConfigError(f"training.fid_features: unknown value {features!r}. Choose one of "
                          f"{list(FID_FEATURES)}.")
    every = section.get("fid_every")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int)
                              or every < 0):
        raise ConfigError(f"training.fid_every: expected an integer >= 0 (0 turns FID off) "
                          f"or null (follow sample_every), got {every!r}.")
    samples = section.get("fid_samples", 1000)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ConfigError(f"training.fid_samples: expected an integer >= 2, got {samples!r}.")


def _domain_extractor(config, run_dir):
    from keras_aigc.cli.train_features import split_kwargs
    from keras_aigc.metrics import features

    data = dict(config["data"])
    candidates = [os.path.join(run_dir, "features"),
                  features.default_directory(data["source"], **split_kwargs(data))]
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, features.domain_features.MODEL_FILE)):
            return features.DomainFeatures.load(directory), candidates
    return None, candidates


def fid_callback(config, training, run_dir, stream):
    """A `FrechetDistanceCallback` as the training section asks, or `None` (FID off)."""
    from keras_aigc.callbacks import FrechetDistanceCallback
    from keras_aigc.cli.config import ConfigError
    from keras_aigc.cli.train_features import split_kwargs

    every = training.sample_every if training.fid_every is None else training.fid_every
    if training.fid_features in ("off", False) or every == 0:
        return None
    data = dict(config["data"])
    if training.fid_features == "standard":
        from keras_aigc.metrics import features

        if not hasattr(features, "FIDInception"):
            raise ConfigError("training.fid_features: 'standard' needs keras_aigc.metrics."
                              "features.FIDInception, which this keras-aigc lacks; use "
                              "'domain'.")
        extractor = features.FIDInception()
    else:
        extractor, candidates = _domain_extractor(config, run_dir)
        if extractor is None:
            hint = (f"train one with `keras-aigc train-features CONFIG` (it reads the data "
                    f"section; looked in {candidates})")
            if training.fid_features == "domain":
                raise ConfigError(f"training.fid_features: 'domain' but there is no domain "
                                  f"classifier for data source {data['source']!r}; {hint}.")
            print(f"FID: off (no domain classifier for {data['source']!r}; {hint}, or set "
                  "training.fid_features=standard).", file=stream)
            return None
    if training.fid_samples <= extractor.dim:
        raise ConfigError(
            f"training.fid_samples: {training.fid_samples} samples do not give a full-rank "
            f"covariance of the {extractor.dim}-dimensional {extractor.name} features; use "
            f"at least {2 * extractor.dim}.")
    from keras_aigc import data as data_lib

    real, _, _ = data_lib.load_arrays(data["source"], "test", **split_kwargs(data))
    print(f"FID: every {every} epoch(s), {training.fid_samples} samples against "
          f"{len(real)} test images, features: {extractor.name}", file=stream)
    return FrechetDistanceCallback(extractor, real, num_samples=training.fid_samples,
                                   every=every, seed=training.seed)


def callbacks(config, training, run_dir, stream):
    """`(before, after)`: callbacks to place before and after `keras.callbacks.TensorBoard`.

    The FID callback goes before it (so TensorBoard and the progress bar see `fid` in the
    logs), the hparams logger after it.
    """
    from keras_aigc.callbacks import HParamsLogger

    fid = fid_callback(config, training, run_dir, stream)
    hparams = HParamsLogger(os.path.join(run_dir, "logs"), config,
                            summary_path=os.path.join(run_dir, "training.json"))
    return ([fid] if fid is not None else []), [hparams]

import argparse
import json
import os

import keras
import numpy as np
import pytest
import yaml

from keras_aigc import data
from keras_aigc.cli import config as config_lib
from keras_aigc.cli import evaluate, train
from keras_aigc.cli import main as cli
from keras_aigc.metrics.features import train_domain_classifier
from keras_aigc.models import GenerativeModel


def eval_args(run_dir, **kw):
    args = dict(run_dir=str(run_dir), num_samples=120, features="domain", features_dir=None,
                inception_weights=None, nll_samples=4, batch_size=50, seed=0, output=None)
    args.update(kw)
    return argparse.Namespace(**args)


@pytest.fixture(scope="module")
def digits_features(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("features"))
    extractor, record = train_domain_classifier("digits", directory=directory, epochs=3,
                                                batch_size=64, verbose=0)
    return directory, extractor, record


def test_run_dir_without_model(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("data: {source: digits}\n")
    with pytest.raises(FileNotFoundError, match=r"has no model\.keras.*config\.yaml"):
        evaluate.run(eval_args(tmp_path))
    assert cli.main(["evaluate", str(tmp_path)]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        evaluate.run(eval_args(tmp_path / "missing"))


def test_gan_run_end_to_end(tmp_path, digits_features, capsys):
    config = config_lib.validate({
        "model": {"name": "DCGAN", "latent_dim": 8, "g_filters": [16, 8, 4], "d_filters": [4],
                  "kernel_size": 3},
        "data": {"source": "digits", "batch_size": 32},
        "training": {"epochs": 1, "steps_per_epoch": 2, "verbose": 0, "num_samples": 4,
                     "validation": False},
    })
    run_dir = tmp_path / "run"
    train.run(config, str(run_dir))
    args = ["evaluate", str(run_dir), "--num-samples", "200", "--batch-size", "50",
            "--features-dir", digits_features[0]]
    assert cli.main(args) == 0
    with open(run_dir / "metrics.json") as f:
        m = json.load(f)
    assert m["kind"] == "gan" and m["model"] == "DCGAN"
    assert m["num_generated"] == 200
    assert m["num_real"] == data.info("digits", "test").num_examples  # capped by the split
    assert m["fid"] > 0 and np.isfinite(m["kid"]) and m["kid_std"] >= 0
    assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1
    assert m["classifier_test_accuracy"] == digits_features[2]["test_accuracy"]
    assert "classifier_accuracy_on_samples" not in m  # unconditional
    out = capsys.readouterr().out
    assert "200/200" in out  # the progress bar
    assert "Wrote" in out


class RealImagesGenerator(GenerativeModel):
    """A perfect conditional 'generator': returns real training digits of the given labels."""

    num_classes = 10
    value_range = (-1.0, 1.0)

    def __init__(self):
        super().__init__()
        self.x, self.y, _ = data.load_arrays("digits", "train")

    def generate(self, n, labels=None, seed=None):
        rng = np.random.default_rng(seed)
        idx = [rng.choice(np.flatnonzero(self.y == c)) for c in labels]
        return self.x[idx] / 127.5 - 1.0


def test_conditional_gan_of_real_images_scores_like_the_test_set(digits_features):
    model = RealImagesGenerator()
    assert evaluate.evaluation_of(model) == "samples"
    m = evaluate.evaluate_gan(model, {"data": {"source": "digits"}},
                              eval_args("unused", num_samples=300,
                                        features_dir=digits_features[0]))
    # Real train digits labelled correctly: the classifier is about as accurate on them as
    # on the test split, and they lie on the real manifold.
    assert m["classifier_accuracy_on_samples"] >= digits_features[2]["test_accuracy"] - 0.1
    assert m["precision"] > 0.8 and m["recall"] > 0.8
    # Compared with a generator of pure noise, FID and KID are far lower.
    noise = RealImagesGenerator()
    noise.x = np.random.default_rng(0).integers(0, 256, noise.x.shape).astype(np.uint8)
    bad = evaluate.evaluate_gan(noise, {"data": {"source": "digits"}},
                                eval_args("unused", num_samples=300,
                                          features_dir=digits_features[0]))
    assert bad["fid"] > 5 * m["fid"] and bad["kid"] > 5 * m["kid"]
    assert bad["precision"] < 0.2


def test_missing_domain_classifier_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_AIGC_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(FileNotFoundError, match="keras-aigc train-features"):
        evaluate.get_extractor(eval_args(tmp_path), {"data": {"source": "digits"}})


@keras.saving.register_keras_serializable(package="keras_aigc_tests")
class PixelBernoulli(GenerativeModel):
    """Independent Bernoulli pixels: its ELBO and log-likelihood are exact and equal."""

    family = "vae"
    evaluation = "likelihood"

    def __init__(self, image_shape=(32, 32, 1), **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(image_shape)
        self.logits = self.add_weight(shape=self.image_shape, name="logits",
                                      initializer=keras.initializers.RandomNormal(seed=0))

    def call(self, x):
        return keras.ops.broadcast_to(self.logits, keras.ops.shape(x))

    def log_likelihood(self, x, num_samples=1):
        del num_samples
        ll = x * keras.ops.log_sigmoid(self.logits) + (1 - x) * keras.ops.log_sigmoid(
            -self.logits)
        return keras.ops.sum(keras.ops.reshape(ll, (keras.ops.shape(x)[0], -1)), axis=1)

    def elbo(self, x):
        return self.log_likelihood(x)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape)}


def test_vae_run_reports_elbo_and_nll(tmp_path):
    run_dir = tmp_path / "vae_run"
    run_dir.mkdir()
    model = PixelBernoulli()
    model.save(str(run_dir / "model.keras"))
    data_section = {"source": "digits", "batch_size": 32, "scaling": "sigmoid",
                    "binarize": "static"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"data": data_section}))
    m = evaluate.run(eval_args(run_dir, num_samples=100, batch_size=40))
    kw = {k: v for k, v in data_section.items() if k != "source"}
    x = np.concatenate([b for b in data.load("digits", split="test", **kw)])[:100]
    expected = -float(np.mean(model.log_likelihood(x)))
    assert m["kind"] == "vae"
    assert m["num_test_examples"] == 100
    assert m["test_nll"] == pytest.approx(expected, rel=1e-5)
    assert m["test_elbo"] == pytest.approx(-expected, rel=1e-5)
    assert m["test_nll_bits_per_dim"] == pytest.approx(expected / 1024 / np.log(2), rel=1e-5)
    assert os.path.isfile(run_dir / "metrics.json")


def test_bad_num_samples(tmp_path):
    with pytest.raises(ValueError, match="--num-samples must be an integer >= 2, got 1"):
        evaluate.run(eval_args(tmp_path, num_samples=1))


def test_inception_features_offline_fail_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("KERAS_AIGC_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="--inception-weights PATH"):
        evaluate.get_extractor(eval_args(tmp_path, features="inception"),
                               {"data": {"source": "digits"}})


def test_default_features_are_the_fid_network_when_its_weights_exist(tmp_path, monkeypatch):
    from keras_aigc.metrics import features

    built = []

    class StubFID:
        def __init__(self, weights=None, download=False):
            built.append((weights, download))

    monkeypatch.setattr(features, "FIDInception", StubFID)
    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"x")
    config = {"data": {"source": "digits"}}
    monkeypatch.setenv("KERAS_AIGC_FID_WEIGHTS", str(weights))
    args = eval_args(tmp_path, features=None, fid_weights=None, fid_download=False)
    assert isinstance(evaluate.get_extractor(args, config), StubFID)
    assert args.features == "fid" and built == [(None, False)]
    # Without weights the fast domain classifier stays the default (and says how to get one).
    monkeypatch.delenv("KERAS_AIGC_FID_WEIGHTS")
    monkeypatch.setenv("KERAS_AIGC_CACHE", str(tmp_path / "empty_cache"))
    args = eval_args(tmp_path, features=None, fid_weights=None, fid_download=False)
    with pytest.raises(FileNotFoundError, match="keras-aigc train-features"):
        evaluate.get_extractor(args, config)
    assert args.features == "domain" and len(built) == 1


def test_fid_features_without_weights_name_the_three_ways(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_AIGC_FID_WEIGHTS", raising=False)
    args = eval_args(tmp_path, features="fid", fid_weights=None, fid_download=False)
    with pytest.raises(FileNotFoundError, match="--fid-weights PATH.*KERAS_AIGC_FID_WEIGHTS"):
        evaluate.get_extractor(args, {"data": {"source": "digits"}})

"""Presets in the keras-hub format: save_to_preset -> from_preset for every family."""

import json
import os
import shutil

import numpy as np
import pytest

import keras_aigc as ka
from keras_aigc.models import preset as preset_lib

TINY_GAN = {"image_shape": (16, 16, 1), "latent_dim": 8, "g_filters": (16, 8),
            "d_filters": (8,), "kernel_size": 3}
TINY_VAE = {"image_shape": (4, 4, 1), "latent_dim": 2, "hidden_units": (8,)}

FAMILIES = {
    "DCGAN": lambda: ka.models.DCGAN(**TINY_GAN),
    "WGANGP": lambda: ka.models.WGANGP(**TINY_GAN),
    "SNGAN": lambda: ka.models.SNGAN(**TINY_GAN),
    "ConditionalGAN": lambda: ka.models.ConditionalGAN(num_classes=3, **TINY_GAN),
    "VAE": lambda: ka.models.VAE(**TINY_VAE),
    "ConditionalVAE": lambda: ka.models.ConditionalVAE(num_classes=3, **TINY_VAE),
}


def trained_like(make):
    """A model whose weights differ from any fresh initialisation (as after training)."""
    model = make()
    if not model.built:
        model.build()
    rng = np.random.default_rng(1)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


def _kwargs(model):
    return {"labels": np.arange(6) % 3} if getattr(model, "num_classes", None) else {}


def _no_temp_left(parent):
    return [p for p in os.listdir(parent) if ".tmp-" in p or ".old-" in p]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_gives_identical_images(family, tmp_path):
    model = trained_like(FAMILIES[family])
    before = model.generate(6, seed=7, **_kwargs(model))
    path = model.save_to_preset(tmp_path / "p", metrics={"fid": 12.25, "features": "domain"})
    assert sorted(os.listdir(path)) == sorted(preset_lib.PRESET_FILES)
    loaded = type(model).from_preset(str(path))
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.generate(6, seed=7, **_kwargs(model)), before)
    # The base class and the package-level function load it too.
    base = ka.models.GAN if "GAN" in family else ka.models.VAE
    np.testing.assert_array_equal(base.from_preset(str(path)).generate(6, seed=7,
                                                                         **_kwargs(model)),
                                  before)
    np.testing.assert_array_equal(ka.models.from_preset(str(path)).generate(
        6, seed=7, **_kwargs(model)), before)
    # The weights, not the seeded initialisers, make the images: a fresh build differs.
    fresh = type(model).from_config(model.get_config())
    if not fresh.built:
        fresh.build()
    assert not np.array_equal(fresh.generate(6, seed=7, **_kwargs(model)), before)


def test_files_follow_keras_hub_layout(tmp_path):
    model = trained_like(FAMILIES["DCGAN"])
    path = model.save_to_preset(tmp_path / "dcgan")
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    assert config["class_name"] == "DCGAN"
    assert config["registered_name"] == "keras_aigc>DCGAN"
    assert config["config"]["g_filters"] == [16, 8]
    with open(os.path.join(path, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["keras_aigc_version"] == ka.__version__
    assert meta["parameter_count"] == model.count_params()
    assert meta["weights_sha256"] == preset_lib.sha256_file(os.path.join(path,
                                                                         "model.weights.h5"))


def test_model_card_has_the_numbers_passed_in(tmp_path, mnist_path):
    model = trained_like(FAMILIES["ConditionalGAN"])
    data = preset_lib.data_fingerprint(f"npz:{mnist_path}")
    metrics = {"fid": 7.8125, "kid": 0.00431, "precision": 0.731, "recall": 0.642,
               "features": "fid_inception (2015-12-05 TF Inception pool3)",
               "num_generated": 10000, "num_real": 10000}
    training = {"steps": 4690, "epochs": 10, "wall_time_s": 1234.5}
    path = model.save_to_preset(tmp_path / "cgan_mnist", metrics=metrics, data=data,
                                training=training, license="CC-BY-4.0",
                                description="A test card.")
    with open(os.path.join(path, "README.md")) as f:
        card = f.read()
    for text in ("# cgan_mnist", "A test card.", "keras_aigc.models.ConditionalGAN",
                 f"{model.count_params():,}", "| FID | 7.812 |", "| KID | 0.00431 |",
                 "| Precision | 0.731 |", "| Recall | 0.642 |",
                 "fid_inception (2015-12-05 TF Inception pool3)",
                 "10000 generated against 10000 real", data["sha256"], "4690",
                 "20.6 min (1234.5 s)", f"keras-aigc: {ka.__version__}", "CC-BY-4.0"):
        assert text in card, text
    assert data["sha256_of"] == "file"
    assert data["sha256"] == preset_lib.sha256_file(mnist_path)


def test_vae_card_shows_nll(tmp_path):
    model = trained_like(FAMILIES["VAE"])
    path = model.save_to_preset(tmp_path / "vae", metrics={
        "test_nll": 84.31, "test_elbo": -88.02, "nll_importance_samples": 5000,
        "num_test_examples": 10000})
    card = open(os.path.join(path, "README.md")).read()
    for text in ("| Test NLL (nats) | 84.31 |", "| Test ELBO (nats) | -88.02 |",
                 "k = 5000 on 10000 test examples"):
        assert text in card, text


def test_data_fingerprint_of_arrays_source():
    a = preset_lib.data_fingerprint("digits")
    assert a == preset_lib.data_fingerprint("digits")
    assert len(a["sha256"]) == 64 and a["sha256_of"].startswith("train split arrays")


def test_feature_metrics_need_the_network(tmp_path):
    model = trained_like(FAMILIES["DCGAN"])
    with pytest.raises(ValueError, match=r"does not name the network.*metrics\['features'\]"):
        model.save_to_preset(tmp_path / "p", metrics={"fid": 3.0})
    assert not os.path.exists(tmp_path / "p")


def test_existing_destination_needs_overwrite(tmp_path):
    model = trained_like(FAMILIES["DCGAN"])
    path = model.save_to_preset(tmp_path / "p", metrics={"fid": 1.0, "features": "domain"})
    with pytest.raises(ValueError, match="already exists; pass overwrite=True"):
        model.save_to_preset(path)
    model.save_to_preset(path, metrics={"fid": 2.0, "features": "domain"}, overwrite=True)
    assert preset_lib.read_metadata(path)["metrics"]["fid"] == 2.0
    assert _no_temp_left(tmp_path) == []


def test_failed_save_leaves_nothing(tmp_path, monkeypatch):
    model = trained_like(FAMILIES["DCGAN"])
    old = model.save_to_preset(tmp_path / "p", metrics={"fid": 1.0, "features": "domain"})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save_to_preset(tmp_path / "new")
    assert not os.path.exists(tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        model.save_to_preset(old, metrics={"fid": 9.0, "features": "domain"}, overwrite=True)
    # The old preset is intact and still loads.
    assert preset_lib.read_metadata(old)["metrics"]["fid"] == 1.0
    assert _no_temp_left(tmp_path) == []
    monkeypatch.undo()
    ka.models.DCGAN.from_preset(old)


def test_architecture_presets_still_build():
    gan = ka.models.DCGAN.from_preset("tf_tutorial", latent_dim=16)
    assert gan.latent_dim == 16


def test_unknown_name_fails_clearly():
    with pytest.raises(ValueError, match=r"Unrecognized preset='big'.*dcgan_mnist.*tf_tutorial"):
        ka.models.DCGAN.from_preset("big")


def test_unpublished_trained_name_gives_the_command():
    with pytest.raises(ValueError) as e:
        ka.models.DCGAN.from_preset("dcgan_mnist")
    msg = str(e.value)
    assert "not published yet" in msg and "hf://keras-aigc/dcgan_mnist" in msg
    # The command trains the recipe the published card describes, not the tutorial config.
    assert ("keras-aigc publish --train configs/dcgan_infogan_mnist_quality.yaml "
            "presets/dcgan_mnist") in msg
    for entry in preset_lib.TRAINED_PRESETS.values():
        assert os.path.isfile(os.path.join(os.path.dirname(__file__), "..", "..",
                                           entry["config"])), entry["config"]


def test_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such preset directory"):
        ka.models.DCGAN.from_preset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"lacks \['config.json', 'model.weights.h5'\]"):
        ka.models.DCGAN.from_preset(str(tmp_path / "empty"))


def test_corrupt_weights_fail_clearly(tmp_path):
    path = trained_like(FAMILIES["DCGAN"]).save_to_preset(tmp_path / "p")
    before = sorted(os.listdir(tmp_path))
    with open(os.path.join(path, "model.weights.h5"), "r+b") as f:
        f.seek(0)
        f.write(b"\0" * 64)
    with pytest.raises(ValueError, match=r"could not load .*model.weights.h5.*corrupt"):
        ka.models.DCGAN.from_preset(path)
    assert sorted(os.listdir(tmp_path)) == before
    assert sorted(os.listdir(path)) == sorted(preset_lib.PRESET_FILES)


def test_wrong_class_fails_clearly(tmp_path):
    path = trained_like(FAMILIES["VAE"]).save_to_preset(tmp_path / "vae")
    with pytest.raises(ValueError, match="holds a VAE, not a DCGAN"):
        ka.models.DCGAN.from_preset(path)


def test_bad_uris_fail_clearly():
    with pytest.raises(ValueError, match="unknown scheme 's3://'"):
        ka.models.DCGAN.from_preset("s3://bucket/x")
    with pytest.raises(ValueError, match="expected hf://USER/REPO"):
        ka.models.DCGAN.from_preset("hf://justone")
    with pytest.raises(ValueError, match="expected kaggle://OWNER/MODEL/FRAMEWORK/VARIATION"):
        ka.models.DCGAN.from_preset("kaggle://a/b")


def test_hf_uri_loads_from_the_offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    model = trained_like(FAMILIES["SNGAN"])
    src = model.save_to_preset(tmp_path / "src")
    # The layout huggingface_hub keeps for a downloaded repo: refs/main -> snapshot.
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf" / "models--keras-aigc--sngan_test"
    shutil.copytree(src, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = ka.models.SNGAN.from_preset("hf://keras-aigc/sngan_test")
    np.testing.assert_array_equal(loaded.generate(4, seed=3), model.generate(4, seed=3))
    with pytest.raises(ValueError, match="hf://keras-aigc/missing.*could not download"):
        ka.models.SNGAN.from_preset("hf://keras-aigc/missing")


def test_kaggle_uri_loads_from_the_kagglehub_cache(tmp_path, monkeypatch):
    model = trained_like(FAMILIES["ConditionalVAE"])
    src = model.save_to_preset(tmp_path / "src")
    # kagglehub's cache: models/OWNER/MODEL/FRAMEWORK/VARIATION/VERSION + a completion marker.
    base = tmp_path / "kh" / "models" / "keras-aigc" / "cvae" / "keras" / "mnist"
    shutil.copytree(src, base / "3")
    (base / "3.complete").touch()
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kh"))
    loaded = ka.models.ConditionalVAE.from_preset("kaggle://keras-aigc/cvae/keras/mnist/3")
    labels = np.arange(4) % 3
    np.testing.assert_array_equal(loaded.generate(4, seed=3, labels=labels),
                                  model.generate(4, seed=3, labels=labels))


def test_missing_hub_library_names_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_hub(name, *args, **kwargs):
        if name in ("huggingface_hub", "kagglehub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hub)
    with pytest.raises(ImportError, match=r'pip install "keras-aigc\[hub\]"'):
        ka.models.DCGAN.from_preset("hf://a/b")
    with pytest.raises(ImportError, match=r'pip install "keras-aigc\[hub\]"'):
        ka.models.DCGAN.from_preset("kaggle://a/b/keras/c/1")

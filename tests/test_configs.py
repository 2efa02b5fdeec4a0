"""Every shipped config validates, and builds its model (checked against the constructor)."""

import glob
import os

import pytest
import yaml

from keras_aigc import models
from keras_aigc.cli import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# finetune_*.yaml are `keras-aigc finetune` configs, validated in tests/cli/test_finetune.py.
CONFIGS = sorted(p for p in glob.glob(os.path.join(ROOT, "configs", "*.yaml"))
                 if not os.path.basename(p).startswith("finetune_"))


def test_configs_exist_for_every_gan_family():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"wgan_gp_mnist.yaml", "sngan_mnist.yaml", "cgan_mnist.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_config_validates(path):
    config = config_lib.load_config(path)
    assert config["model"]["name"] in models.MODELS


@pytest.mark.parametrize("name", ["wgan_gp_mnist.yaml", "sngan_mnist.yaml", "cgan_mnist.yaml",
                                  "dcgan_mnist_quality.yaml", "dcgan_infogan_mnist_quality.yaml",
                                  "cgan_mnist_quality.yaml", "sngan_infogan_mnist_quality.yaml",
                                  "wgan_gp_infogan_mnist_quality.yaml",
                                  "cgan_infogan_mnist_quality.yaml",
                                  "dcgan_infogan_mnist_quality_bf16.yaml",
                                  "dcgan_infogan_mnist_quality_ttur.yaml",
                                  "cgan_infogan_mnist_quality_bf16.yaml",
                                  "sngan_infogan_mnist_quality_bf16.yaml",
                                  "cgan_bn_infogan_mnist_quality.yaml",
                                  "wgan_gp_infogan_mnist_quality_d2_bf16.yaml",
                                  "sngan_dcgan_d_mnist_quality_bf16.yaml",
                                  "wgan_gp_ln_infogan_mnist_quality_bf16.yaml",
                                  "vae_mnist_quality_iaf.yaml"])
def test_config_builds_its_model_with_the_configured_arguments(name):
    with open(os.path.join(ROOT, "configs", name)) as f:
        config = yaml.safe_load(f)
    section = dict(config["model"])
    cls = models.MODELS[section.pop("name")]
    extra = {"num_classes": 10} if cls is models.ConditionalGAN else {}
    model = cls(**section, **extra)
    model_config = model.get_config()
    for key, value in section.items():
        assert model_config[key] == value, key


def test_a_bad_key_names_its_dotted_path(tmp_path):
    with open(os.path.join(ROOT, "configs", "wgan_gp_mnist.yaml")) as f:
        config = yaml.safe_load(f)
    config["model"]["penalty_wieght"] = 1.0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(config_lib.ConfigError, match=r"model.penalty_wieght: unknown key"):
        config_lib.load_config(str(path))

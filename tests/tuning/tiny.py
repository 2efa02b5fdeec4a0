"""The tiny VAE-on-digits config the tuning tests search over."""

import yaml

BASE = {
    "model": {"name": "VAE", "latent_dim": 4, "hidden_units": [32],
              "likelihood": "bernoulli"},
    "data": {"source": "digits", "batch_size": 64, "scaling": "sigmoid",
             "binarize": "dynamic"},
    "compile": {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.001}}},
    "training": {"epochs": 1, "steps_per_epoch": 8, "num_samples": 4, "verbose": 0,
                 "fid_features": "off", "backup_freq": None},
}


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return str(path)

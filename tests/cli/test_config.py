import pytest

from keras_aigc.cli import config as config_lib


def _config(**model):
    return {"model": {"name": "DCGAN", **model}, "data": {"source": "digits"}}


@pytest.mark.parametrize("model, match", [
    ({"g_filters": ["a"]}, r"model.g_filters: expected a list of int, got list \['a'\]"),
    ({"g_filters": [8, 4.5]}, r"model.g_filters: expected a list of int"),
    ({"value_range": [0, "1"]}, r"model.value_range: expected a list of float"),
    ({"image_shape": [28, 28, True]}, r"model.image_shape: expected a list of int"),
])
def test_element_types_are_checked(model, match):
    with pytest.raises(config_lib.ConfigError, match=match):
        config_lib.validate(_config(**model))


def test_good_sequences_pass():
    config_lib.validate(_config(g_filters=[8, 4], value_range=[-1, 1.0],
                                image_shape=[32, 32, 1]))


@pytest.mark.parametrize("section, flag", [("export", "keras-aigc export"),
                                           ("evaluate", "keras-aigc evaluate")])
def test_sections_nothing_reads_are_rejected(section, flag):
    config = {**_config(), section: {"formats": ["onnx"]}}
    with pytest.raises(config_lib.ConfigError, match=f"{section}: no command reads.*{flag}"):
        config_lib.validate(config)


def test_relative_paths_resolve_against_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "data").mkdir()
    path = tmp_path / "cfg" / "run.yaml"
    path.write_text("model: {name: DCGAN}\ndata: {source: npz:../data/x.npz, data_dir: cache}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = config_lib.load_config(str(path))
    assert config["data"]["source"] == f"npz:{tmp_path / 'data' / 'x.npz'}"
    assert config["data"]["data_dir"] == str(tmp_path / "cfg" / "cache")
    # --set values are relative to where the command runs.
    config = config_lib.load_config(str(path), ["data.source=dir:imgs"])
    assert config["data"]["source"] == f"dir:{elsewhere / 'imgs'}"
    assert config_lib.load_config(str(path), ["data.source=mnist"])["data"]["source"] == "mnist"

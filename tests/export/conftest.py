"""Session-scoped export bundles shared by the export tests."""

import pytest
from export_helpers import FACTORIES

from keras_aigc.export import export_bundle


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """One bundle per family with every format and quantization: `(model, dir, manifest)`."""
    cache = {}

    def get(family):
        if family not in cache:
            model = FACTORIES[family]()
            out = tmp_path_factory.mktemp(family) / "bundle"
            manifest = export_bundle(model, str(out),
                                     formats=("saved_model", "tflite", "onnx", "triton"),
                                     quantize=("float16", "dynamic_int8", "int8"))
            cache[family] = (model, str(out), manifest)
        return cache[family]

    return get

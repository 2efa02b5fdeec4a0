from keras_aigc.export.triton import config_pbtxt

SIGNATURE = {
    "name": "generate", "key": None, "batch_size": -1,
    "inputs": [{"name": "z", "role": "latent", "dtype": "float32", "shape": [-1, 16]},
               {"name": "labels", "role": "label", "dtype": "int32", "shape": [-1]}],
    "outputs": [{"name": "image", "role": "image", "dtype": "float32", "shape": [-1, 28, 28, 1]}],
}


def test_config_pbtxt_text():
    assert config_pbtxt("g_generate", SIGNATURE, 32) == (
        'name: "g_generate"\n'
        'platform: "onnxruntime_onnx"\n'
        "max_batch_size: 32\n"
        "input [\n"
        '  {\n    name: "z"\n    data_type: TYPE_FP32\n    dims: [ 16 ]\n  },\n'
        '  {\n    name: "labels"\n    data_type: TYPE_INT32\n    dims: [ 1 ]\n'
        "    reshape: { shape: [ ] }\n  }\n"
        "]\n"
        "output [\n"
        '  {\n    name: "image"\n    data_type: TYPE_FP32\n    dims: [ 28, 28, 1 ]\n  }\n'
        "]\n"
        "dynamic_batching { }\n")

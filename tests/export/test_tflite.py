import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.export import export_spec
from keras_aigc.export import tflite as tflite_lib
from keras_aigc.export.saved_model import export_saved_model
from tests.export.export_helpers import LATENT_DIM, run_tflite, tiny_dcgan


@pytest.fixture(scope="module")
def dcgan_saved_model(tmp_path_factory):
    model = tiny_dcgan()
    path = str(tmp_path_factory.mktemp("sm") / "saved_model")
    export_saved_model(export_spec(model), path)
    return model, path


def test_dynamic_batch_tflite_is_correct_at_many_batch_sizes(dcgan_saved_model, tmp_path):
    # tensorflow#61410: transposed convolutions may not follow resize_tensor_input. Our
    # dynamic-batch file is only claimed after this kind of check; here at more sizes
    # than the exporter uses, including sizes in a different order.
    model, sm = dcgan_saved_model
    path = tmp_path / "m.tflite"
    content = tflite_lib.convert(sm, "generate")
    path.write_bytes(content)
    assert "TRANSPOSE_CONV" in tflite_lib.op_names(content)
    rng = np.random.default_rng()
    for n in (7, 1, 3, 16, 2):
        z = rng.standard_normal((n, LATENT_DIM)).astype(np.float32)
        got = run_tflite(str(path), "generate", ["z"], [z])["image"]
        np.testing.assert_allclose(got, model.generator(z).numpy(), atol=1e-5)


def test_full_integer_model_has_int8_inputs_and_outputs(dcgan_saved_model):
    _, sm = dcgan_saved_model
    rng = np.random.default_rng(0)

    def rep():
        for _ in range(20):
            yield {"z": rng.standard_normal((1, LATENT_DIM)).astype(np.float32)}

    content = tflite_lib.convert(sm, "generate", "int8", rep)
    runner = tflite_lib.interpreter(content).get_signature_runner("generate")
    assert runner.get_input_details()["z"]["dtype"] == np.int8
    assert runner.get_output_details()["image"]["dtype"] == np.int8
    # Every tensor the ops compute on is int8/int32 (biases): no float kernels left.
    float_ops = [op for op in tflite_lib.interpreter(content)._get_ops_details()
                 if any(t == np.float32 for t in op["operand_types"])]
    assert float_ops == []


def test_flex_ops_are_rejected():
    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
    def f(x):
        return tf.roll(x, 1, axis=1)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                      tf.lite.OpsSet.SELECT_TF_OPS]
    content = conv.convert()
    assert "CUSTOM:FlexRoll" in tflite_lib.op_names(content)
    with pytest.raises(ValueError, match=r"non-builtin ops \['CUSTOM:FlexRoll'\]"):
        tflite_lib.check_builtin_ops(content)


def test_bad_quantization_arguments(dcgan_saved_model):
    _, sm = dcgan_saved_model
    with pytest.raises(ValueError, match=r"Unrecognized quantization='int4'.*'dynamic_int8'"):
        tflite_lib.convert(sm, "generate", "int4")
    with pytest.raises(ValueError, match="needs a representative dataset"):
        tflite_lib.convert(sm, "generate", "int8")


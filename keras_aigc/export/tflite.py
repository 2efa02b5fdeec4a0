"""TFLite (LiteRT) conversion from a SavedModel signature, builtin ops only, run with LiteRT.

Exporter interface (see `registry`): `write`, `runner`, `describe`.
"""

import numpy as np

from keras_aigc.export.registry import Artifact, Part

LABEL = "TFLite"  # how messages name this format
REQUIRES = ()
DEFAULT = True  # written when export_bundle(formats=None)
# Name used in manifests, file names (`model_<name>.tflite`) and the runtime's `variant`.
QUANTIZATIONS = ("float16", "dynamic_int8", "int8")
REPRESENTATIVE_EXAMPLES = 320


def file_name(stem, quantization="none", batch_size=None):
    """`model.tflite`, `model_float16.tflite`, `decode_int8_b8.tflite`, ...: the
    quantization name as the runtime and the CLI spell it."""
    quant = "" if quantization == "none" else f"_{quantization}"
    return f"{stem}{quant}{'' if batch_size is None else f'_b{batch_size}'}.tflite"


def write(spec, ctx):
    """One `.tflite` file per signature, quantization and (fixed) batch size."""
    dynamic = ctx.saved_model(spec)
    # None: the dynamic-batch file; ints: fixed-batch files (with a dynamic batch, the
    # serving sizes, which XNNPACK runs several times faster than the dynamic file).
    sizes = ([None] + list(ctx.serving_batch_sizes) if ctx.batch_sizes is None
             else list(ctx.batch_sizes))
    fixed_sizes = tuple(n for n in sizes if n is not None)
    fixed = ctx.saved_model(spec, fixed_sizes) if fixed_sizes else None
    artifacts = []
    for i, sig in enumerate(spec.signatures):
        stem = "model" if i == 0 else sig.name
        for quant in ("none",) + tuple(ctx.quantize):
            for n in sizes:
                key = sig.name if n is None else f"{sig.name}_b{n}"
                path = file_name(stem, quant, n)
                rep = (representative(spec, sig, n or 1, ctx.rng) if quant == "int8"
                       else None)
                content = convert(dynamic if n is None else fixed, key, quant, rep)
                with open(ctx.full(path), "wb") as f:
                    f.write(content)
                artifacts.append(Artifact(path, "tflite", [Part(sig, key, n)], quant))
    return artifacts


def representative(spec, sig, batch, rng):
    """At least `REPRESENTATIVE_EXAMPLES` inputs drawn from the model's prior."""
    count = -(-REPRESENTATIVE_EXAMPLES // batch)
    data = [spec.sample_inputs(sig, batch, rng) for _ in range(count)]

    def gen():
        for inputs in data:
            yield {t.name: x for t, x in zip(sig.inputs, inputs, strict=True)}

    return gen


def convert(saved_model_dir, key, quantization="none", representative=None):
    """Converts SavedModel signature `key` to .tflite bytes.

    Args:
        saved_model_dir: str. SavedModel holding the signature.
        key: str. Signature key.
        quantization: `"none"` (fp32), `"float16"`, `"dynamic_int8"` or `"int8"`
            (full integer with int8 inputs and outputs; needs `representative`).
        representative: callable returning an iterator of `{input name: array}` drawn
            from the model's prior, for `"int8"`.
    """
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[key])
    # Builtin ops only: a Flex (Select-TF) op would not run on stock LiteRT or a phone.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative is None:
            raise ValueError("quantization='int8' needs a representative dataset.")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    elif quantization != "none":
        raise ValueError(f"Unrecognized quantization={quantization!r}. Supported quantizations "
                         f"are: {list(QUANTIZATIONS)}.")
    try:
        content = conv.convert()
    except Exception as e:  # the converter raises its own ConverterError types
        raise ValueError(f"TFLite conversion of signature {key!r} ({quantization}) failed with "
                         f"builtin ops only: {e}") from e
    check_builtin_ops(content)
    return content


def op_names(content):
    """Names of the operator codes in .tflite bytes (custom ops by their custom code)."""
    from tensorflow.lite.python import schema_py_generated as fb

    model = fb.Model.GetRootAsModel(content, 0)
    names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == fb.BuiltinOperator.CUSTOM:
            custom = code.CustomCode()
            out.append("CUSTOM:" + (custom.decode() if custom else "?"))
        else:
            out.append(names.get(builtin, str(builtin)))
    return out


def check_builtin_ops(content):
    """Raises ValueError if the .tflite holds custom or Flex (Select-TF) ops."""
    bad = [n for n in op_names(content) if n.startswith("CUSTOM:")]
    if bad:
        raise ValueError(
            f"The TFLite model holds non-builtin ops {sorted(set(bad))}; stock LiteRT and phones "
            f"without the Flex delegate cannot run it. Replace the layers that produce them.")


def interpreter(path_or_content, num_threads=None):
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_content, (bytes, bytearray)):
        return Interpreter(model_content=bytes(path_or_content), num_threads=num_threads)
    return Interpreter(model_path=str(path_or_content), num_threads=num_threads)


def runner(ctx, artifact, part):
    """`run(inputs) -> {output: float32 array}` through the runtime's LiteRT runner, so
    int8 tensors are (de)quantized exactly as `keras_aigc_runtime` does."""
    from keras_aigc_runtime.litert_backend import LiteRTRunner

    run_file = LiteRTRunner(ctx.full(artifact.path), part.key)
    names = [t.name for t in part.signature.inputs]

    def run(inputs):
        return run_file(dict(zip(names, inputs, strict=True)))

    return run


def describe(ctx, artifact, part):
    return file_signature(ctx.full(artifact.path), part.key, part.signature,
                          -1 if part.batch_size is None else part.batch_size)


def file_signature(path, key, sig, batch_size):
    """Manifest `signatures[]` entry read back from the .tflite at `path`."""
    interp = interpreter(path)
    runner_ = interp.get_signature_runner(key)

    def tensor(name, d, infos):
        info = next(i for i in infos if i.name == name)
        entry = {"name": name, "role": info.role, "dtype": np.dtype(d["dtype"]).name,
                 "shape": [int(s) for s in d["shape_signature"]]}
        if batch_size == -1:
            entry["shape"][0] = -1
        if d["quantization"][0]:
            entry["quantization"] = {"scale": float(d["quantization"][0]),
                                     "zero_point": int(d["quantization"][1])}
        return entry

    ins, outs = runner_.get_input_details(), runner_.get_output_details()
    return {"name": sig.name, "key": key, "batch_size": int(batch_size),
            "inputs": [tensor(i.name, ins[i.name], sig.inputs) for i in sig.inputs],
            "outputs": [tensor(o.name, outs[o.name], sig.outputs) for o in sig.outputs]}

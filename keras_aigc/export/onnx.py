"""ONNX export through tf2onnx (as Keras' `format="onnx"` does), verified with ONNX Runtime.

Exporter interface (see `registry`): `write`, `runner`, `describe`.
"""

from keras_aigc.export.registry import Artifact, Part

LABEL = "ONNX"  # how messages name this format
REQUIRES = ()
DEFAULT_OPSET = 17


def write(spec, ctx):
    """One dynamic-batch `.onnx` file per signature (`model.onnx` for the first)."""
    artifacts = []
    for i, sig in enumerate(spec.signatures):
        path = "model.onnx" if i == 0 else f"{sig.name}.onnx"
        full = ctx.full(path)
        export_onnx(sig, full)
        if not batch_is_dynamic(full):
            raise ValueError(f"The ONNX file {path} has no dynamic batch axis.")
        artifacts.append(Artifact(path, "onnx", [Part(sig)], extra={"opset": opset_of(full)}))
    return artifacts


def file_runner(path, signature):
    """`run(inputs) -> {output: array}` on an ONNX file, through the runtime's runner."""
    from keras_aigc_runtime.onnx_backend import OnnxRunner

    run_file = OnnxRunner(str(path), providers=["CPUExecutionProvider"])
    names = [t.name for t in signature.inputs]

    def run(inputs):
        return run_file(dict(zip(names, inputs, strict=True)))

    return run


def runner(ctx, artifact, part):
    return file_runner(ctx.full(artifact.path), part.signature)


def describe(ctx, artifact, part):
    return file_signature(ctx.full(artifact.path), part.signature)


def export_onnx(signature, path, opset=DEFAULT_OPSET):
    """Converts one signature to an ONNX file with a dynamic batch axis.

    Args:
        signature: `Signature`. Its input names become the ONNX input names and its
            output names the ONNX output names.
        path: str. Output `.onnx` file.
        opset: int. ONNX opset, at least 17.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got opset={opset}.")
    import tensorflow as tf
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    patch_tf2onnx()  # tf2onnx 1.17 still reads np.object etc.; Keras ships the fix.
    import tf2onnx

    specs = signature.tf_specs(None)
    fn = tf.function(signature.fn, input_signature=specs, autograph=False)
    try:
        tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset, output_path=path)
    except Exception as e:
        raise ValueError(f"ONNX conversion of signature {signature.name!r} failed: {e}") from e
    return path


def session(path, num_threads=None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if num_threads:
        opts.intra_op_num_threads = int(num_threads)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def batch_is_dynamic(path):
    """True when every graph input and output has a symbolic first dimension."""
    import onnx

    model = onnx.load(str(path))
    for t in list(model.graph.input) + list(model.graph.output):
        dims = t.type.tensor_type.shape.dim
        if not dims or dims[0].HasField("dim_value") or not dims[0].dim_param:
            return False
    return True


def opset_of(path):
    import onnx

    model = onnx.load(str(path))
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def file_signature(path, sig):
    """Manifest `signatures[]` entry read back from the ONNX file."""
    sess = session(path)
    dtypes = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int32)": "int32",
              "tensor(int64)": "int64", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}

    def tensor(t, infos):
        info = next(i for i in infos if i.name == t.name)
        return {"name": t.name, "role": info.role, "dtype": dtypes[t.type],
                "shape": [d if isinstance(d, int) else -1 for d in t.shape]}

    return {"name": sig.name, "key": None, "batch_size": -1,
            "inputs": [tensor(t, sig.inputs) for t in sess.get_inputs()],
            "outputs": [tensor(t, sig.outputs) for t in sess.get_outputs()]}

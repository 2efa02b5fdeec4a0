"""ONNX export through tf2onnx (as Keras' `format="onnx"` does), verified with ONNX Runtime.

Exporter interface (see `registry`): `write`, `runner`, `describe`.
"""

import numpy as np

from keras_aigc.export.registry import Artifact, Part

LABEL = "ONNX"  # how messages name this format
REQUIRES = ()
DEFAULT = True  # written when export_bundle(formats=None)
DEFAULT_OPSET = 17
# Names as in the manifest, the file names (`model_<name>.onnx`) and the runtime's `variant`
# (the same spelling as the TFLite ones):
# - "float16": weights and activations in float16, float32 inputs and outputs
#   (onnxconverter-common's converter with `keep_io_types`); for GPUs and CPUs with fp16
#   arithmetic, elsewhere ORT computes through casts.
# - "dynamic_int8": int8 weights, activation scales computed per call
#   (`onnxruntime.quantization.quantize_dynamic`; MatMul and Gemm, the dense projection).
# - "int8": static QDQ quantization of every Conv, MatMul and Gemm, int8 per-channel
#   weights and uint8 activations whose ranges are calibrated on inputs drawn from the
#   model's prior (`quantize_static`); float32 inputs and outputs.
QUANTIZATIONS = ("float16", "dynamic_int8", "int8")
CALIBRATION_EXAMPLES = 320
FLOAT16_INSTALL = 'pip install "keras-aigc[onnx-fp16]"  (or: pip install onnxconverter-common)'


def file_name(stem, quantization="none"):
    """`model.onnx`, `model_int8.onnx`, `decode_float16.onnx`, ..."""
    return f"{stem}{'' if quantization == 'none' else f'_{quantization}'}.onnx"


def write(spec, ctx):
    """One dynamic-batch `.onnx` file per signature (`model.onnx` for the first), and one
    per signature and ONNX quantization in `ctx.onnx_quantize`."""
    artifacts = []
    for i, sig in enumerate(spec.signatures):
        stem = "model" if i == 0 else sig.name
        path = file_name(stem)
        full = ctx.full(path)
        export_onnx(sig, full)
        if not batch_is_dynamic(full):
            raise ValueError(f"The ONNX file {path} has no dynamic batch axis.")
        artifacts.append(Artifact(path, "onnx", [Part(sig)], extra={"opset": opset_of(full)}))
        for quant in getattr(ctx, "onnx_quantize", ()):
            qpath = file_name(stem, quant)
            calibration = (calibration_inputs(spec, sig, ctx.rng) if quant == "int8" else None)
            quantize(full, ctx.full(qpath), quant, calibration, work_dir=ctx.work)
            artifacts.append(Artifact(qpath, "onnx", [Part(sig)], quant,
                                      extra={"opset": opset_of(ctx.full(qpath))}))
    return artifacts


def calibration_inputs(spec, sig, rng, batch=32):
    """At least `CALIBRATION_EXAMPLES` inputs drawn from the model's prior, as a list of
    `{input name: array}` feeds (batches of `batch`)."""
    count = -(-CALIBRATION_EXAMPLES // batch)
    return [{t.name: x for t, x in zip(sig.inputs, spec.sample_inputs(sig, batch, rng),
                                       strict=True)} for _ in range(count)]


def quantize(src, dst, quantization, calibration=None, work_dir=None):
    """Writes a quantized copy of the ONNX file `src` to `dst`.

    Args:
        src: str. A float32 ONNX file (as `export_onnx` writes it).
        dst: str. Output path.
        quantization: str. One of `QUANTIZATIONS`.
        calibration: list of `{input name: array}` feeds, for `"int8"` (the activation
            ranges are calibrated on them; draw them from the model's prior).
        work_dir: str or None. Scratch directory for the pre-processed model.

    Raises:
        ValueError: unknown quantization, `"int8"` without `calibration`, or a failed
            conversion. ImportError: `"float16"` without onnxconverter-common, with the
            install command.
    """
    import onnx

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"Unrecognized ONNX quantization={quantization!r}. Supported ONNX "
                         f"quantizations are: {list(QUANTIZATIONS)}.")
    if quantization == "float16":
        try:
            from onnxconverter_common import float16
        except ImportError as e:
            raise ImportError(f"The ONNX float16 variant needs onnxconverter-common: "
                              f"{FLOAT16_INSTALL}") from e
        try:
            # Cast nodes stay in float32 (the converter inserts casts around them):
            # onnxconverter-common >= 1.15 retypes a Cast(to=float)'s output as float16
            # without changing its `to`, which ORT refuses to load
            # (microsoft/onnxconverter-common#320; the label path of conditional models
            # has such a Cast).
            model = float16.convert_float_to_float16(
                onnx.load(src), keep_io_types=True,
                op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + ["Cast"])
            onnx.checker.check_model(model)
        except Exception as e:  # the converter raises assorted types
            raise ValueError(f"ONNX float16 conversion of {src} failed: {e}") from e
        onnx.save(model, dst)
        return dst
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if quantization == "dynamic_int8":
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8,
                             op_types_to_quantize=["MatMul", "Gemm"])
        except Exception as e:
            raise ValueError(f"ONNX dynamic_int8 quantization of {src} failed: {e}") from e
        return dst
    if not calibration:
        raise ValueError("ONNX quantization='int8' needs calibration inputs (a list of "
                         "{input name: array} feeds drawn from the model's prior).")
    import os
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self._feeds = iter(calibration)

        def get_next(self):
            return next(self._feeds, None)

    scratch = tempfile.mkdtemp(dir=work_dir)
    prepared = os.path.join(scratch, "prepared.onnx")
    try:
        # Shape inference and ORT's graph optimisation first (fuses e.g. BatchNorm into
        # Conv), as ORT's quantization guide asks.
        quant_pre_process(src, prepared, skip_symbolic_shape=True)
        # Integer inputs (class labels) keep their dtype: only float tensors are quantized.
        quantize_static(prepared, dst, _Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                        extra_options={"ActivationSymmetric": False})
    except Exception as e:
        raise ValueError(f"ONNX int8 (static) quantization of {src} failed: {e}") from e
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return dst


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


_REGISTERED = []


def register_missing_ops():
    """Teaches tf2onnx 1.17 the TensorFlow ops it has no handler for and this package's
    graphs use, once per process:

    - `Log1p` (ONNX has no such operator; tf2onnx fails with "No Op registered for
      Log1p"): `Log(Add(x, 1))`. tensorflow-probability's quantized logistic (the
      PixelCNN++ mixture) computes `log1p(-exp(d))`; in float32, `log(1 + x)` differs
      from `log1p(x)` by at most ~6e-8 absolute there, well inside the export parity check.
    """
    if _REGISTERED:
        return
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Log1p")
    class Log1p:  # noqa: F841 - registered by the decorator
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            del kwargs
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype))
            add = ctx.make_node("Add", [node.input[0], one.output[0]],
                                name=utils.make_name(f"{node.name}_add"))
            ctx.copy_shape(node.input[0], add.output[0])
            ctx.replace_input(node, node.input[0], add.output[0], 0)
            node.type = "Log"

    _REGISTERED.append(Log1p)


def export_onnx(signature, path, opset=DEFAULT_OPSET, optimize=True):
    """Converts one signature to an ONNX file with a dynamic batch axis.

    Args:
        signature: `Signature`. Its input names become the ONNX input names and its
            output names the ONNX output names.
        path: str. Output `.onnx` file.
        opset: int. ONNX opset, at least 17.
        optimize: bool. Rewrite transposed convolutions into Conv + DepthToSpace
            (`conv_transpose_as_conv`), which ONNX Runtime runs with its fast blocked
            convolution kernels. The rewrite is portable ONNX (no hardware-specific
            ORT layout ops), and the bundle's parity check covers it like any file.
    """
    if opset < 17:
        raise ValueError(f"opset must be >= 17, got opset={opset}.")
    import tensorflow as tf
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    patch_tf2onnx()  # tf2onnx 1.17 still reads np.object etc.; Keras ships the fix.
    import tf2onnx

    register_missing_ops()

    specs = signature.tf_specs(None)
    fn = tf.function(signature.fn, input_signature=specs, autograph=False)
    try:
        tf2onnx.convert.from_function(fn, input_signature=specs, opset=opset, output_path=path)
    except Exception as e:
        raise ValueError(f"ONNX conversion of signature {signature.name!r} failed: {e}") from e
    if optimize:
        import onnx

        model = onnx.load(path)
        if conv_transpose_as_conv(model):
            onnx.save(model, path)
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


# ------------------------------------------------------------------ graph optimisation
def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def conv_transpose_as_conv(model):
    """Rewrites each ConvTranspose into an equivalent Conv (+ DepthToSpace + Slice).

    ONNX Runtime's CPU ConvTranspose runs a GEMM and then a single-threaded col2im;
    its Conv runs MLAS' blocked (NCHWc) kernels. A transposed convolution with stride
    `s`, kernel `k` and begin padding `p` is, for each of the `s*s` output phases, a
    correlation of the input with a sub-kernel of `ceil(k / s)` taps taken every `s`th
    tap of the flipped kernel. One Conv computes all phases as `s*s*C_out` channels,
    DepthToSpace (DCR) interleaves them into the upsampled grid and a Slice crops the
    padding. The sum is the same; only the order of additions changes (float rounding).

    Nodes outside the supported case (weights not an initializer, groups, dilation,
    unequal strides, an `output_shape` attribute) are left as they are.

    Args:
        model: `onnx.ModelProto`, changed in place.

    Returns:
        The number of nodes rewritten.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    new_nodes, rewritten = [], 0
    for node in graph.node:
        if node.op_type != "ConvTranspose" or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        strides = list(_attr(node, "strides", [1, 1]))
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        out_pad = list(_attr(node, "output_padding", [0, 0]))
        auto_pad = _attr(node, "auto_pad", b"NOTSET")
        if (w.ndim != 4 or _attr(node, "group", 1) != 1 or _attr(node, "output_shape")
                or any(d != 1 for d in _attr(node, "dilations", [1, 1]))
                or auto_pad not in (b"NOTSET", "NOTSET") or strides[0] != strides[1]
                or out_pad[0] != out_pad[1]):
            new_nodes.append(node)
            continue
        s, k = strides[0], w.shape[2:]
        c_in, c_out = w.shape[:2]
        taps = [-(-kk // s) for kk in k]  # J per axis
        q_min = [p // s for p in pads[:2]]
        left = [j - 1 - q for j, q in zip(taps, q_min, strict=True)]
        if min(left) < 0:
            new_nodes.append(node)
            continue
        right, offset, trim = [], [], []
        for a in range(2):
            need = (out_pad[a] + k[a] - pads[2 + a] - q_min[a] * s) / s + taps[a] - 2 - left[a]
            r = max(0, int(np.ceil(need)))
            right.append(r)
            offset.append(pads[a] - q_min[a] * s)
            trim.append(s * (left[a] + r - taps[a] + 2) + q_min[a] * s - out_pad[a] - k[a]
                        + pads[2 + a])
        # Wc[(rh*s + rw)*C_out + co, ci, mh, mw] = W[ci, co, (Jh-1-mh)*s + rh, (Jw-1-mw)*s + rw]
        wc = np.zeros((s * s * c_out, c_in, taps[0], taps[1]), w.dtype)
        for rh in range(s):
            for rw in range(s):
                phase = (rh * s + rw) * c_out
                for mh in range(taps[0]):
                    th = (taps[0] - 1 - mh) * s + rh
                    if th >= k[0]:
                        continue
                    for mw in range(taps[1]):
                        tw = (taps[1] - 1 - mw) * s + rw
                        if tw < k[1]:
                            wc[phase:phase + c_out, :, mh, mw] = w[:, :, th, tw].T
        base = node.output[0]
        w_name = f"{base}__as_conv_w"
        graph.initializer.append(numpy_helper.from_array(wc, w_name))
        conv_inputs = [node.input[0], w_name]
        if len(node.input) > 2 and node.input[2]:
            b = numpy_helper.to_array(inits[node.input[2]])
            graph.initializer.append(numpy_helper.from_array(np.tile(b, s * s), f"{base}__as_conv_b"))
            conv_inputs.append(f"{base}__as_conv_b")
        conv_out = base if s == 1 and offset == [0, 0] and trim == [0, 0] else f"{base}__as_conv"
        new_nodes.append(helper.make_node(
            "Conv", conv_inputs, [conv_out], name=f"{node.name or base}__as_conv",
            kernel_shape=taps, strides=[1, 1], pads=[left[0], left[1], right[0], right[1]]))
        current = conv_out
        if s > 1:
            current = f"{base}__d2s"
            new_nodes.append(helper.make_node("DepthToSpace", [conv_out], [current],
                                              blocksize=s, mode="DCR",
                                              name=f"{node.name or base}__d2s"))
        if current != base:
            names = [f"{base}__{n}" for n in ("starts", "ends", "axes")]
            big = np.iinfo(np.int64).max
            graph.initializer.extend([
                numpy_helper.from_array(np.array(offset, np.int64), names[0]),
                numpy_helper.from_array(np.array([-t if t > 0 else big for t in trim],
                                                 np.int64), names[1]),
                numpy_helper.from_array(np.array([2, 3], np.int64), names[2]),
            ])
            new_nodes.append(helper.make_node("Slice", [current] + names, [base],
                                              name=f"{node.name or base}__crop"))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.checker.check_model(model)
    return rewritten

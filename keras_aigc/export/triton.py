"""A Triton Inference Server model repository (ONNX Runtime backend) from ONNX signatures."""

import os
import shutil

from keras_aigc.export.registry import Artifact, Part

LABEL = "Triton"  # how messages name this format
REQUIRES = ("onnx",)
DEFAULT = False  # only when asked for: a Triton repository is a deployment choice
DEFAULT_MAX_BATCH_SIZE = 64
_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32",
          "int64": "TYPE_INT64", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8"}


def config_pbtxt(model_name, file_signature, max_batch_size):
    """config.pbtxt text: dims drop the batch dimension, which Triton adds itself."""
    def tensors(kind, entries):
        blocks = []
        for t in entries:
            dims = t["shape"][1:]
            lines = [f'    name: "{t["name"]}"', f"    data_type: {_TYPES[t['dtype']]}"]
            if dims:
                lines.append(f"    dims: [ {', '.join(str(d) for d in dims)} ]")
            else:
                # A per-example scalar (a class label): Triton needs non-empty dims.
                lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
            blocks.append("  {\n" + "\n".join(lines) + "\n  }")
        return f"{kind} [\n" + ",\n".join(blocks) + "\n]\n"

    return (f'name: "{model_name}"\nplatform: "onnxruntime_onnx"\n'
            f"max_batch_size: {int(max_batch_size)}\n"
            + tensors("input", file_signature["inputs"])
            + tensors("output", file_signature["outputs"])
            + "dynamic_batching { }\n")


def write(spec, ctx):
    """`triton/<name>_<signature>/` for every ONNX signature, as one bundle directory."""
    from keras_aigc.export import onnx

    repo, parts, opset = ctx.full("triton"), [], None
    for onnx_artifact in ctx.artifacts["onnx"]:
        if onnx_artifact.quantization != "none":  # Triton serves the float32 files
            continue
        part = onnx_artifact.parts[0]
        model_name = f"{ctx.name}_{part.signature.name}"
        source = ctx.full(onnx_artifact.path)
        write_model(repo, model_name, source, onnx.file_signature(source, part.signature),
                    ctx.max_batch_size)
        parts.append(Part(part.signature, key=model_name))
        opset = onnx_artifact.extra["opset"]
    return [Artifact("triton", "triton", parts,
                     extra={"opset": opset, "max_batch_size": int(ctx.max_batch_size)})]


def _model_file(ctx, artifact, part):
    return os.path.join(ctx.full(artifact.path), part.key, "1", "model.onnx")


def runner(ctx, artifact, part):
    """Runs the repository's copy of the ONNX file (so the copy itself is verified)."""
    from keras_aigc.export import onnx

    return onnx.file_runner(_model_file(ctx, artifact, part), part.signature)


def describe(ctx, artifact, part):
    from keras_aigc.export import onnx

    return {**onnx.file_signature(_model_file(ctx, artifact, part), part.signature),
            "key": part.key}


def write_model(repo_dir, model_name, onnx_path, file_signature, max_batch_size):
    """Writes `<repo_dir>/<model_name>/config.pbtxt` and `.../1/model.onnx`."""
    model_dir = os.path.join(repo_dir, model_name)
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    shutil.copyfile(onnx_path, os.path.join(model_dir, "1", "model.onnx"))
    with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
        f.write(config_pbtxt(model_name, file_signature, max_batch_size))
    return model_dir

"""SavedModel export through `keras.export.ExportArchive`, one named endpoint per signature.

Exporter interface (see `registry`): `write`, `runner`, `describe`.
"""

import numpy as np

from keras_aigc.export.registry import Artifact, Part

LABEL = "SavedModel"  # how messages name this format
REQUIRES = ()
DEFAULT = True  # written when export_bundle(formats=None)
PATH = "saved_model"


def write(spec, ctx):
    """The bundle's dynamic-batch SavedModel: one artifact holding every signature."""
    ctx.saved_model(spec)
    return [Artifact(PATH, "saved_model", [Part(sig, sig.name) for sig in spec.signatures])]


def _loaded(ctx, artifact):
    import tensorflow as tf

    key = ("saved_model", artifact.path)
    if key not in ctx.cache:
        ctx.cache[key] = tf.saved_model.load(ctx.full(artifact.path))
    return ctx.cache[key]


def runner(ctx, artifact, part):
    """`run(inputs) -> {output: array}` calling signature `part.key` of the SavedModel."""
    import tensorflow as tf

    fn = _loaded(ctx, artifact).signatures[part.key]
    names = [i.name for i in part.signature.inputs]

    def run(inputs):
        res = fn(**{k: tf.constant(v) for k, v in zip(names, inputs, strict=True)})
        return {k: np.asarray(v) for k, v in res.items()}

    return run


def describe(ctx, artifact, part):
    """The manifest entry of one signature, read back from the SavedModel."""
    return _entry(_loaded(ctx, artifact).signatures[part.key], part.signature)


def export_saved_model(spec, path, batch_sizes=None):
    """Writes a SavedModel with one endpoint per signature.

    Args:
        spec: `ExportSpec` of the model.
        path: str. Output directory.
        batch_sizes: `None` for a dynamic batch (endpoints named after the signatures),
            or a list of ints: fixed-batch endpoints `<signature>_b<N>` (used as the
            source of fixed-batch TFLite conversions).
    """
    import keras

    archive = keras.export.ExportArchive()
    for obj in spec.tracked:
        archive.track(obj)
    for sig in spec.signatures:
        for n in ([None] if batch_sizes is None else batch_sizes):
            key = sig.name if n is None else f"{sig.name}_b{n}"
            archive.add_endpoint(key, sig.fn, input_signature=sig.input_specs(n))
    archive.write_out(path, verbose=False)
    return path


def file_signatures(spec, path):
    """Manifest `signatures[]` entries of the SavedModel at `path` (read back from it)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    return [_entry(loaded.signatures[sig.name], sig) for sig in spec.signatures]


def _entry(fn, sig):
    ins = fn.structured_input_signature[1]
    outs = fn.structured_outputs
    return {
        "name": sig.name, "key": sig.name, "batch_size": -1,
        "inputs": [_tensor(i.name, ins[i.name], sig.inputs) for i in sig.inputs],
        "outputs": [_tensor(o.name, outs[o.name], sig.outputs) for o in sig.outputs],
    }


def _tensor(name, tspec, infos):
    info = next(i for i in infos if i.name == name)
    return {"name": name, "role": info.role, "dtype": tspec.dtype.name,
            "shape": [-1 if d is None else int(d) for d in tspec.shape.as_list()]}

"""SavedModel export through `keras.export.ExportArchive`, one named endpoint per signature."""

import numpy as np


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


def runner(path, key, input_names):
    """Returns `run(inputs) -> {output: array}` calling signature `key` of a SavedModel."""
    import tensorflow as tf

    fn = tf.saved_model.load(path).signatures[key]

    def run(inputs):
        res = fn(**{k: tf.constant(v) for k, v in zip(input_names, inputs, strict=True)})
        return {k: np.asarray(v) for k, v in res.items()}

    return run


def file_signatures(spec, path):
    """Manifest `signatures[]` entries of the SavedModel at `path` (read back from it)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    entries = []
    for sig in spec.signatures:
        fn = loaded.signatures[sig.name]
        ins = fn.structured_input_signature[1]
        outs = fn.structured_outputs
        entries.append({
            "name": sig.name, "key": sig.name, "batch_size": -1,
            "inputs": [_tensor(name, ins[name], sig.inputs) for name in
                       [i.name for i in sig.inputs]],
            "outputs": [_tensor(name, outs[name], sig.outputs) for name in
                        [o.name for o in sig.outputs]],
        })
    return entries


def _tensor(name, tspec, infos):
    info = next(i for i in infos if i.name == name)
    return {"name": name, "role": info.role, "dtype": tspec.dtype.name,
            "shape": [-1 if d is None else int(d) for d in tspec.shape.as_list()]}

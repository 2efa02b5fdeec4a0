import numpy as np
import tensorflow as tf

from keras_aigc.export import export_spec
from keras_aigc.export.saved_model import export_saved_model, file_signatures
from tests.export.export_helpers import LATENT_DIM, NUM_CLASSES, tiny_cgan, tiny_vae


def test_conditional_signature_has_dynamic_batch_and_matches_keras(tmp_path):
    model = tiny_cgan()
    spec = export_spec(model)
    path = str(tmp_path / "sm")
    export_saved_model(spec, path)
    fn = tf.saved_model.load(path).signatures["generate"]
    inputs = fn.structured_input_signature[1]
    assert inputs["z"].shape.as_list() == [None, LATENT_DIM]
    assert inputs["labels"].shape.as_list() == [None] and inputs["labels"].dtype == tf.int32
    rng = np.random.default_rng()
    for n in (1, 7):
        z = rng.standard_normal((n, LATENT_DIM)).astype(np.float32)
        labels = rng.integers(0, NUM_CLASSES, n).astype(np.int32)
        got = fn(z=tf.constant(z), labels=tf.constant(labels))["image"].numpy()
        ref = model.generator([z, labels]).numpy()
        np.testing.assert_allclose(got, ref, atol=1e-6)


def test_vae_has_decode_and_encode_signatures(tmp_path):
    model = tiny_vae()
    spec = export_spec(model)
    path = str(tmp_path / "sm")
    export_saved_model(spec, path)
    loaded = tf.saved_model.load(path)
    assert {"decode", "encode"} <= set(loaded.signatures.keys())
    x = np.random.default_rng().uniform(0, 1, (7, 8, 8, 1)).astype(np.float32)
    out = loaded.signatures["encode"](image=tf.constant(x))
    loc, scale = model.encoder(x)
    np.testing.assert_allclose(out["loc"].numpy(), loc.numpy(), atol=1e-6)
    np.testing.assert_allclose(out["scale"].numpy(), scale.numpy(), atol=1e-6)
    entries = {e["name"]: e for e in file_signatures(spec, path)}
    assert entries["encode"]["outputs"] == [
        {"name": "loc", "role": "loc", "dtype": "float32", "shape": [-1, LATENT_DIM]},
        {"name": "scale", "role": "scale", "dtype": "float32", "shape": [-1, LATENT_DIM]}]


def test_fixed_batch_endpoints(tmp_path):
    spec = export_spec(tiny_cgan())
    path = str(tmp_path / "sm")
    export_saved_model(spec, path, batch_sizes=[3])
    fn = tf.saved_model.load(path).signatures["generate_b3"]
    assert fn.structured_input_signature[1]["z"].shape.as_list() == [3, LATENT_DIM]

"""What a model exports: per-family signatures, their Keras functions and input samplers.

A model plugs in either by defining `export_signatures()` (returning a list of `Signature`)
or through the duck-typed defaults below:

- VAE: has `encoder` and `decoder` sub-models -> `decode` (z -> mean image) and `encode`
  (image -> posterior `loc`, `scale`).
- Conditional GAN: has `num_classes` and `inference_generator` -> `generate` (z, label:int32).
- GAN: has `inference_generator` -> `generate` (z -> image).
"""

import dataclasses
import hashlib
import os
from typing import Callable

import numpy as np

LATENT, LABEL, IMAGE, LOC, SCALE = "latent", "label", "image", "loc", "scale"


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: `shape` has `None` for the batch dimension."""

    name: str
    role: str
    dtype: str
    shape: tuple

    def to_json(self, batch=-1):
        return {"name": self.name, "role": self.role, "dtype": self.dtype,
                "shape": [batch if d is None else int(d) for d in self.shape]}


@dataclasses.dataclass
class Signature:
    """A named inference function: `fn(*inputs)` returns a dict `{output name: tensor}`."""

    name: str
    fn: Callable
    inputs: list
    outputs: list

    def input_specs(self, batch=None):
        import keras

        return [keras.InputSpec(shape=(batch,) + tuple(i.shape[1:]), dtype=i.dtype, name=i.name)
                for i in self.inputs]

    def tf_specs(self, batch=None):
        import tensorflow as tf

        return [tf.TensorSpec((batch,) + tuple(i.shape[1:]), i.dtype, name=i.name)
                for i in self.inputs]

    def to_json(self):
        return {"inputs": [i.to_json() for i in self.inputs],
                "outputs": [o.to_json() for o in self.outputs]}


@dataclasses.dataclass
class ExportSpec:
    """Everything the exporters need to know about one model."""

    family: str
    signatures: list
    tracked: list
    latent_dim: int
    num_classes: object
    image_shape: tuple
    value_range: tuple
    ema_weights: bool
    class_name: str
    config: dict

    def signature(self, name):
        for s in self.signatures:
            if s.name == name:
                return s
        raise KeyError(name)

    def sample_inputs(self, signature, n, rng):
        """Fresh inputs for `signature` drawn from the model's prior, as numpy arrays."""
        out = []
        for spec in signature.inputs:
            if spec.role == LATENT:
                out.append(rng.standard_normal((n,) + tuple(spec.shape[1:])).astype(np.float32))
            elif spec.role == LABEL:
                out.append(rng.integers(0, self.num_classes, size=(n,) + tuple(spec.shape[1:]))
                           .astype(spec.dtype))
            elif spec.role == IMAGE:
                # Images the model itself would produce: decoded prior samples, plus a
                # little noise so the encoder sees more than the decoder's manifold.
                producer = self.signatures[0]
                z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
                ins = [z] + [rng.integers(0, self.num_classes, size=(n,)).astype(np.int32)
                             for s in producer.inputs[1:] if s.role == LABEL]
                img = np.asarray(producer.fn(*ins)[producer.outputs[0].name], np.float32)
                low, high = self.value_range
                img = img + 0.02 * (high - low) * rng.standard_normal(img.shape).astype(np.float32)
                out.append(np.clip(img, low, high).astype(np.float32))
            else:
                raise ValueError(f"Cannot sample an input with role={spec.role!r}.")
        return out

    def keras_outputs(self, signature, inputs):
        res = signature.fn(*[np.asarray(x) for x in inputs])
        return {k: np.asarray(v) for k, v in res.items()}


def _is_keras_aigc(model):
    import keras

    if not isinstance(model, keras.Model):
        return False
    # The class or one of its bases (a user's DCGAN subclass counts) is ours.
    for cls in type(model).__mro__:
        if not (isinstance(cls, type) and issubclass(cls, keras.Model)):
            continue
        if ((keras.saving.get_registered_name(cls) or "").startswith("keras_aigc>")
                or cls.__module__.startswith("keras_aigc.")):
            return True
    return False


def _shape_of(model_or_layer_output_shape):
    shape = tuple(model_or_layer_output_shape)
    return (None,) + tuple(int(d) for d in shape[1:])


def export_spec(model):
    """Returns the `ExportSpec` of a built keras_aigc model.

    Raises:
        ValueError: the model is not a keras_aigc model, is not built, or is of no
            known family.
    """
    import keras

    if not _is_keras_aigc(model):
        raise ValueError(
            f"model must be a built keras_aigc model (a keras.Model registered under the "
            f"'keras_aigc' package, e.g. keras_aigc.models.DCGAN); got {type(model).__module__}."
            f"{type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"model={type(model).__name__} is not built: call model.build() or fit it (or load "
            f"a saved .keras) before exporting.")
    value_range = tuple(float(v) for v in getattr(model, "value_range", (-1.0, 1.0)))
    common = dict(value_range=value_range, class_name=type(model).__name__,
                  config=_json_config(model))
    latent_dim = int(model.latent_dim)
    if hasattr(model, "export_signatures"):
        sigs = list(model.export_signatures())
        family = getattr(model, "export_family", "gan")
        tracked = list(getattr(model, "export_tracked", [model]))
        image = next(o for s in sigs for o in s.outputs if o.role == IMAGE)
        return ExportSpec(family=family, signatures=sigs, tracked=tracked, latent_dim=latent_dim,
                          num_classes=getattr(model, "num_classes", None),
                          image_shape=tuple(image.shape[1:]), ema_weights=False, **common)
    if hasattr(model, "encoder") and hasattr(model, "decoder"):
        return _vae_spec(model, latent_dim, common)
    if hasattr(model, "inference_generator"):
        return _gan_spec(model, latent_dim, common, keras)
    raise ValueError(
        f"model={type(model).__name__} is of no exportable family: expected a GAN "
        f"(inference_generator), a conditional GAN (num_classes) or a VAE (encoder, decoder), "
        f"or an export_signatures() method.")


def _json_config(model):
    import json

    try:
        return json.loads(json.dumps(model.get_config(), default=lambda o: repr(o)))
    except (NotImplementedError, TypeError, ValueError):
        return {}


def _gan_spec(model, latent_dim, common, keras):
    gen = model.inference_generator
    num_classes = getattr(model, "num_classes", None)
    image_shape = tuple(int(d) for d in gen.output_shape[1:])
    z = TensorInfo("z", LATENT, "float32", (None, latent_dim))
    image = TensorInfo("image", IMAGE, "float32", (None,) + image_shape)
    if num_classes is None:
        def generate(z_):
            return {"image": gen(model.generator_inputs(z_, None), training=False)}
        inputs, family = [z], "gan"
    else:
        def generate(z_, labels):
            z_ = keras.ops.convert_to_tensor(z_, "float32")
            labels = keras.ops.convert_to_tensor(labels, "int32")
            return {"image": gen(model.generator_inputs(z_, labels), training=False)}
        inputs = [z, TensorInfo("labels", LABEL, "int32", (None,))]
        family = "conditional_gan"
    sig = Signature("generate", generate, inputs, [image])
    return ExportSpec(family=family, signatures=[sig], tracked=[gen], latent_dim=latent_dim,
                      num_classes=None if num_classes is None else int(num_classes),
                      image_shape=image_shape,
                      ema_weights=gen is not getattr(model, "generator", gen), **common)


def _vae_spec(model, latent_dim, common):
    prior = model.latent_prior() if hasattr(model, "latent_prior") else {"type": "normal"}
    if prior.get("type", "normal") != "normal":
        raise ValueError(
            f"model={type(model).__name__} has a {prior['type']!r} prior; manifest schema v1 "
            "describes only a standard-normal latent prior. Export a VAE with prior='normal'.")
    if hasattr(model, "decoder_mean_model") and hasattr(model, "encoder_model"):
        # keras_aigc VAEs: functional models that map decoder parameters to the mean
        # image, and add the int32 label input for conditional VAEs.
        decoder, encoder = model.decoder_mean_model(), model.encoder_model()
    else:
        decoder, encoder = model.decoder, model.encoder
    image_shape = tuple(int(d) for d in decoder.output_shape[1:])
    num_classes = getattr(model, "num_classes", None)
    conditional = len(decoder.inputs) > 1
    z = TensorInfo("z", LATENT, "float32", (None, latent_dim))
    image = TensorInfo("image", IMAGE, "float32", (None,) + image_shape)
    label = TensorInfo("labels", LABEL, "int32", (None,))
    scale_shape = tuple(int(d) if d is not None else None
                        for d in encoder.outputs[1].shape)
    scale_shape = (None,) + scale_shape[1:]

    def decode(z_, *labels):
        return {"image": decoder([z_, *labels] if labels else z_, training=False)}

    def encode(x, *labels):
        loc, scale = encoder([x, *labels] if labels else x, training=False)
        return {"loc": loc, "scale": scale}

    sigs = [
        Signature("decode", decode, [z, label] if conditional else [z], [image]),
        Signature("encode", encode, [image, label] if conditional else [image],
                  [TensorInfo("loc", LOC, "float32", (None, latent_dim)),
                   TensorInfo("scale", SCALE, "float32", scale_shape)]),
    ]
    return ExportSpec(family="vae", signatures=sigs, tracked=[decoder, encoder],
                      latent_dim=latent_dim,
                      num_classes=int(num_classes) if conditional and num_classes else None,
                      image_shape=image_shape, ema_weights=False, **common)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_path(path):
    """sha256 of a file, or of a directory as sorted `"<sha256> <relpath>\\n"` lines."""
    if os.path.isfile(path):
        return sha256_file(path), os.path.getsize(path)
    lines, size = [], 0
    for root, _, files in os.walk(path):
        for fname in files:
            full = os.path.join(root, fname)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            lines.append((rel, sha256_file(full)))
            size += os.path.getsize(full)
    text = "".join(f"{digest} {rel}\n" for rel, digest in sorted(lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), size

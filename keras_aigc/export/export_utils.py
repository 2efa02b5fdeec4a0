"""What a model exports: its signatures, their Keras functions and input samplers.

Every model describes its own exports through the `GenerativeModel` contract
(`keras_aigc.models.base`): `export_signatures()` returns `Signature`s whose inputs carry a
role (`latent`, `label`, `image`, `noise`), and `export_spec` collects them with the
model's `latent_dim`, `num_classes`, `image_shape` and `value_range`.
"""

import dataclasses
from typing import Callable

import numpy as np

LATENT, LABEL, IMAGE, NOISE, LOC, SCALE = "latent", "label", "image", "noise", "loc", "scale"
LOG_PROB = "log_prob"
# Roles of signature inputs; the runtime feeds inputs by role.
INPUT_ROLES = (LATENT, LABEL, IMAGE, NOISE)


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
            elif spec.role == NOISE:  # the manifest's `noise`: uniform on [0, 1)
                out.append(rng.random((n,) + tuple(spec.shape[1:])).astype(np.float32))
            elif spec.role == LABEL:
                out.append(rng.integers(0, self.num_classes, size=(n,) + tuple(spec.shape[1:]))
                           .astype(spec.dtype))
            elif spec.role == IMAGE:
                # Images the model itself would produce: decoded prior samples, plus a
                # little noise so the encoder sees more than the decoder's manifold.
                producer = self.signatures[0]
                ins = self.sample_inputs(producer, n, rng)
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


def check_model(model):
    """Raises a ValueError unless `model` is a `keras_aigc.models.GenerativeModel`."""
    from keras_aigc.models.base import GenerativeModel

    if not isinstance(model, GenerativeModel):
        raise ValueError(
            f"model must be a keras_aigc.models.GenerativeModel (e.g. "
            f"keras_aigc.models.DCGAN); got {type(model).__module__}.{type(model).__name__}.")


def export_spec(model):
    """Returns the `ExportSpec` of a `GenerativeModel`, from its contract; an unbuilt
    model is built first (`model.build()`, from its own shapes).

    Raises:
        ValueError: the model is not a `keras_aigc.models.GenerativeModel`, or has a
            latent prior that manifests cannot describe.
    """
    check_model(model)
    if not model.built:
        model.build()
    prior = model.latent_prior()
    if prior.get("type", "normal") != "normal":
        raise ValueError(
            f"model={type(model).__name__} has a {prior['type']!r} prior; manifest schema v1 "
            "describes only a standard-normal latent prior. Export a model with prior='normal'.")
    sigs = list(model.export_signatures())
    for sig in sigs:
        for t in sig.inputs:
            if t.role not in INPUT_ROLES:
                raise ValueError(f"Signature {sig.name!r} input {t.name!r} has role={t.role!r}; "
                                 f"input roles are {list(INPUT_ROLES)}.")
    image = next((o for s in sigs for o in s.outputs if o.role == IMAGE), None)
    if image is None:
        raise ValueError(f"model={type(model).__name__}.export_signatures() has no output with "
                         f"role {IMAGE!r}.")
    return ExportSpec(
        family=model.family, signatures=sigs, tracked=list(model.export_tracked()),
        latent_dim=None if model.latent_dim is None else int(model.latent_dim),
        num_classes=None if model.num_classes is None else int(model.num_classes),
        image_shape=tuple(int(d) for d in image.shape[1:]),
        value_range=tuple(float(v) for v in model.value_range),
        ema_weights=bool(model.exports_ema_weights), class_name=type(model).__name__,
        config=_json_config(model))


def _json_config(model):
    import json

    try:
        return json.loads(json.dumps(model.get_config(), default=lambda o: repr(o)))
    except (NotImplementedError, TypeError, ValueError):
        return {}

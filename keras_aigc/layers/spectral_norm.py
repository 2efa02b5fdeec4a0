"""`SpectralNormalization` as Miyato et al. define it: `W / sigma(W)` inside the graph.

Keras' own wrapper (`keras.layers.SpectralNormalization`, Keras 3.15, ported from
TF-Addons) computes `W / sigma` and then *assigns* it back into the wrapped layer's kernel
variable at every training call; the layer's forward pass then reads that variable. Two
things follow, both different from the paper (Miyato et al. 2018, section 2.2 and eq. 12)
and from PyTorch's `spectral_norm`:

- no gradient flows through `sigma`: the discriminator's gradient with respect to its
  weights lacks the term `-(G . W_bar) u v^T` that keeps each layer from growing sensitive
  in a single direction (the "adaptive regularisation" of eq. 12);
- the optimizer steps the already-normalized matrix (largest singular value 1), which is
  then projected back, rather than the free parameter `W`, whose growth scales the step on
  `W_bar` down by `1 / sigma(W)`.

The gradient blocking was reported against the TF-Addons original in
tensorflow/addons#1244 and against Keras in keras-team/keras#20309; Keras 3.15 still
assigns. `tests/layers/test_spectral_norm.py::test_keras_wrapper_still_blocks_sigma_gradient`
checks that upstream behaviour so that this workaround can go once Keras changes it.

This subclass keeps Keras' variables, configuration and power iteration (so weights and
configs move between the two), and only replaces `call`: the kernel variable keeps the
free `W`, the power iteration updates `u` in training calls only, and the wrapped layer's
computation runs on `W / sigma` with `u` and `v` held constant (`stop_gradient`), as in the
paper's reference code.
"""

import keras
from keras import ops

_SUPPORTED = ("Dense", "Embedding", "Conv1D", "Conv2D", "Conv3D")


def _l2_normalize(x, eps=1e-12):
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x)), eps))


@keras.saving.register_keras_serializable(package="keras_aigc")
class SpectralNormalization(keras.layers.SpectralNormalization):
    """Spectral normalization of a `Dense`, `Embedding` or `Conv1D/2D/3D` layer, with the
    gradient taken through the spectral norm (Miyato et al. 2018).

    The layer computes `layer(x)` with its kernel replaced by `W / sigma(W)`, where `sigma`
    is the power-iteration estimate `v^T W u` of the largest singular value of the kernel
    reshaped to `(-1, units)`. Training calls advance the power iteration (and store `u`);
    inference calls use the stored `u` as it is
    (`sigma = |u W^T|`), so that they are a fixed function of the weights. The kernel variable itself is never rewritten.
    The spectral norm is computed in float32 whatever the compute dtype (under
    `mixed_bfloat16` the convolution runs in bf16 on a float32-normalized kernel).

    Args:
        layer: a `keras.layers.Dense`, `Embedding`, `Conv1D`, `Conv2D` or `Conv3D`.
            (Transposed, depthwise and separable convolutions are not supported: their
            kernels' output axis is not the last.)
        power_iterations: int. Power-iteration steps per training call. Defaults to `1`.
        **kwargs: base `keras.layers.Wrapper` arguments.

    Example:

    ```python
    conv = keras_aigc.layers.SpectralNormalization(keras.layers.Conv2D(64, 3))
    ```
    """

    def __init__(self, layer, power_iterations=1, **kwargs):
        if type(layer).__name__ not in _SUPPORTED or not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                f"keras_aigc.layers.SpectralNormalization supports {', '.join(_SUPPORTED)}; "
                f"got {type(layer).__name__}. Wrap one of those, or use "
                "keras.layers.SpectralNormalization (no gradient through sigma).")
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) \
                or power_iterations < 1:
            raise ValueError("power_iterations must be an integer >= 1, got "
                             f"power_iterations={power_iterations!r}.")
        super().__init__(layer, power_iterations=power_iterations, **kwargs)

    def _sigma_and_u(self, training):
        w = ops.cast(ops.reshape(self.kernel, (-1, self.kernel_shape[-1])), "float32")
        u = ops.cast(self.vector_u, "float32")
        if training:
            for _ in range(self.power_iterations):
                v = _l2_normalize(ops.matmul(u, ops.transpose(w)))
                u = _l2_normalize(ops.matmul(v, w))
        else:  # the stored u as it is (as PyTorch's spectral_norm in eval mode)
            v = _l2_normalize(ops.matmul(u, ops.transpose(w)))
        u = ops.stop_gradient(u)
        v = ops.stop_gradient(v)
        sigma = ops.reshape(ops.matmul(ops.matmul(v, w), ops.transpose(u)), ())
        return w, sigma, u

    def normalized_kernel(self, training=False):
        """`W / sigma(W)` in the kernel's shape, float32, differentiable through sigma.
        With `training=True` the power iteration advances and `u` is stored."""
        w, sigma, u = self._sigma_and_u(training)
        if training:
            self.vector_u.assign(ops.cast(u, self.vector_u.dtype))
        return ops.reshape(w / sigma, self.kernel_shape)

    def call(self, inputs, training=False):
        layer = self.layer
        kernel = ops.cast(self.normalized_kernel(training=bool(training)),
                          self.compute_dtype)
        name = type(layer).__name__
        if name == "Embedding":
            outputs = ops.take(kernel, ops.cast(inputs, "int32"), axis=0)
        else:
            if name == "Dense":
                outputs = ops.matmul(inputs, kernel)
            else:
                outputs = layer.convolution_op(inputs, kernel)
            if layer.use_bias:
                bias = ops.cast(layer.bias, self.compute_dtype)
                if name != "Dense" and layer.data_format == "channels_first":
                    bias = ops.reshape(bias, (1, -1) + (1,) * layer.rank)
                outputs = ops.add(outputs, bias)
            if layer.activation is not None:
                outputs = layer.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

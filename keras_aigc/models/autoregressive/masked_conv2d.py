"""`MaskedConv2D`: the causal convolutions of a Gated PixelCNN's two stacks."""

import keras
import numpy as np

KINDS = ("vertical", "horizontal", "pointwise")
MASK_TYPES = ("A", "B")


@keras.saving.register_keras_serializable(package="keras_aigc")
class MaskedConv2D(keras.layers.Layer):
    """A convolution that sees only what precedes a pixel in raster order.

    The three kinds of a Gated PixelCNN (van den Oord et al. 2016), built without a blind
    spot by shaping the kernel rather than by masking a square one:

    - `"vertical"`: a `(k // 2 + 1, k)` kernel over the rows at and above the pixel (the
      current row included: the vertical stack feeds the horizontal one only after a
      one-row down shift, so it never sees the current row of a pixel it predicts).
    - `"horizontal"`: a `(1, k // 2 + 1)` kernel over the pixels at and left of the pixel
      in its row.
    - `"pointwise"`: a 1x1 convolution.

    Channels are split into `groups` interleaved groups (channel `c` belongs to group
    `c % groups`); at the current pixel, output group `g` sees input groups `< g` (mask
    `"A"`) or `<= g` (mask `"B"`). With `groups` equal to the image channels this gives
    the R -> G -> B ordering inside a pixel; with `groups=1` mask `"A"` hides the current
    pixel entirely. Padding is causal: zeros above and to the left, none below.

    Args:
        filters: int. Output channels (a multiple of `groups`).
        kind: str. `"vertical"`, `"horizontal"` or `"pointwise"`.
        kernel_size: int. Odd `k`. Ignored for `"pointwise"`. Defaults to `3`.
        mask_type: str. `"A"` (first layer: excludes the current pixel's own group) or
            `"B"`. Only the horizontal and pointwise kinds see the current pixel.
            Defaults to `"B"`.
        groups: int. Channel groups ordered inside a pixel. Defaults to `1`.

    Example:

    ```python
    conv = MaskedConv2D(32, "horizontal", kernel_size=3, mask_type="A", groups=3)
    y = conv(keras.random.normal((2, 8, 8, 3)))
    ```

    Reference:
        van den Oord et al., Conditional Image Generation with PixelCNN Decoders, 2016.
    """

    def __init__(self, filters, kind, kernel_size=3, mask_type="B", groups=1, **kwargs):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"Unrecognized kind={kind!r}. Supported kinds are: {list(KINDS)}.")
        if mask_type not in MASK_TYPES:
            raise ValueError(f"Unrecognized mask_type={mask_type!r}. Supported: "
                             f"{list(MASK_TYPES)}.")
        if kind != "pointwise" and (int(kernel_size) < 1 or int(kernel_size) % 2 == 0):
            raise ValueError(f"kernel_size must be a positive odd integer, got "
                             f"kernel_size={kernel_size!r}.")
        if int(filters) % int(groups):
            raise ValueError(f"filters={filters} must be a multiple of groups={groups}.")
        self.filters = int(filters)
        self.kind = kind
        self.kernel_size = int(kernel_size)
        self.mask_type = mask_type
        self.groups = int(groups)

    @property
    def kernel_hw(self):
        half = self.kernel_size // 2
        return {"vertical": (half + 1, self.kernel_size), "horizontal": (1, half + 1),
                "pointwise": (1, 1)}[self.kind]

    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        kh, kw = self.kernel_hw
        self.kernel = self.add_weight(shape=(kh, kw, in_ch, self.filters),
                                      initializer="glorot_uniform", name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        mask = np.ones((kh, kw, in_ch, self.filters), np.float32)
        if self.kind != "vertical":
            gin = np.arange(in_ch)[:, None] % self.groups
            gout = np.arange(self.filters)[None, :] % self.groups
            allowed = gin < gout if self.mask_type == "A" else gin <= gout
            mask[-1, -1] = allowed.astype(np.float32)  # the current pixel's tap
        self.mask = mask

    def masked_kernel(self):
        """The kernel with its masked taps zeroed, `(kh, kw, in, filters)`."""
        kernel = self.kernel * keras.ops.convert_to_tensor(self.mask, self.kernel.dtype)
        return keras.ops.reshape(kernel, self.mask.shape)

    def call(self, x, kernel=None):
        """`kernel`: a precomputed `masked_kernel()` (the PixelCNN sampler computes them
        once before its while loops, so the loop bodies hold no variable reads)."""
        kh, kw = self.kernel_hw
        half = self.kernel_size // 2
        if self.kind == "vertical":
            x = keras.ops.pad(x, [[0, 0], [kh - 1, 0], [half, half], [0, 0]])
        elif self.kind == "horizontal":
            x = keras.ops.pad(x, [[0, 0], [0, 0], [kw - 1, 0], [0, 0]])
        if kernel is None:
            kernel = self.masked_kernel()
        y = keras.ops.conv(x, kernel, strides=1, padding="valid")
        return y + self.bias

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kind": self.kind,
                       "kernel_size": self.kernel_size, "mask_type": self.mask_type,
                       "groups": self.groups})
        return config

"""DiffAugment: differentiable augmentation of real and fake images before D."""

import keras
import tensorflow as tf

from keras_aigc.distribute import replica_info

POLICIES = ("color", "translation", "cutout")


@keras.saving.register_keras_serializable(package="keras_aigc")
class DiffAugment(keras.layers.Layer):
    """Differentiable augmentation (Zhao et al. 2020) for data-efficient GAN training.

    Applies the same family of random transforms to real and generated images before the
    discriminator; every transform is differentiable in the pixels, so the generator
    receives gradients through it. The GAN applies it inside `train_step` only: it is
    never part of the generator that `generate()` uses or that gets exported.

    Transform parameters are drawn for the *global* batch and each replica keeps its own
    rows, so replicas augment their examples differently (like `replica_normal`).

    - `"color"`: per-image brightness `U(-0.5, 0.5)` added, saturation scaled by
      `U(0, 2)` around the per-pixel channel mean, contrast scaled by `U(0.5, 1.5)`
      around the image mean.
    - `"translation"`: integer shifts in `[-r H, r H]` x `[-r W, r W]` with zero fill.
    - `"cutout"`: one zeroed square of `(r H, r W)` pixels at a random centre.

    Args:
        policy: str or list of str. Transforms to apply, in order, from
            `("color", "translation", "cutout")`; a comma-separated string is accepted.
            Defaults to all three.
        translation_ratio: float. Maximum shift as a fraction of the image size.
            Defaults to `0.125`.
        cutout_ratio: float. Cutout side as a fraction of the image size.
            Defaults to `0.5`.
        seed: int. Seed of the layer's random stream (deterministic for tests).
        **kwargs: `keras.layers.Layer` arguments.

    Example:

    ```python
    augment = keras_aigc.layers.DiffAugment("translation,cutout", seed=0)
    augmented = augment(images, training=True)
    ```

    Reference:
        Zhao, Liu, Lin, Zhu, Han. Differentiable Augmentation for Data-Efficient GAN
        Training, NeurIPS 2020.
    """

    def __init__(self, policy=POLICIES, translation_ratio=0.125, cutout_ratio=0.5, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.policy = self.parse_policy(policy)
        for name, value in (("translation_ratio", translation_ratio),
                            ("cutout_ratio", cutout_ratio)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {name}={value!r}.")
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="diff_augment_seed")

    @staticmethod
    def parse_policy(policy):
        """`"color,cutout"` or a list -> a tuple of known transform names."""
        if isinstance(policy, str):
            names = [p.strip() for p in policy.split(",") if p.strip()]
        elif isinstance(policy, (list, tuple)):
            names = list(policy)
        else:
            raise ValueError(
                f"policy must be a string or a list of names from {list(POLICIES)}, got "
                f"policy={policy!r}."
            )
        bad = [p for p in names if p not in POLICIES]
        if bad or not names:
            raise ValueError(
                f"Unrecognized policy={policy!r}. Supported transforms are: {list(POLICIES)}."
            )
        return tuple(names)

    def _uniform(self, local_batch, n_params):
        """`(local_batch, n_params)` uniforms: this replica's rows of a global draw."""
        rid, n = replica_info()
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        u = tf.random.stateless_uniform(tf.stack([local_batch * n, n_params]), seed=seed)
        start = tf.cast(rid, tf.int32) * local_batch
        return u[start:start + local_batch]

    def call(self, images, training=True):
        if not training:
            return images
        x = images
        local_batch = tf.shape(x)[0]
        u = self._uniform(local_batch, 7)
        u = tf.cast(u, x.dtype)
        for name in self.policy:
            if name == "color":
                x = self._color(x, u[:, 0], u[:, 1], u[:, 2])
            elif name == "translation":
                x = self._translation(x, u[:, 3], u[:, 4])
            else:
                x = self._cutout(x, u[:, 5], u[:, 6])
        return x

    @staticmethod
    def _color(x, u_brightness, u_saturation, u_contrast):
        def per_image(v):
            return v[:, None, None, None]

        x = x + per_image(u_brightness - 0.5)
        mean_c = tf.reduce_mean(x, axis=3, keepdims=True)
        x = (x - mean_c) * per_image(u_saturation * 2.0) + mean_c
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        return (x - mean) * per_image(u_contrast + 0.5) + mean

    def _shift_axis(self, x, shift, axis, size):
        idx = tf.range(size)[None, :] + shift[:, None]  # source index of each output
        valid = tf.cast((idx >= 0) & (idx < size), x.dtype)
        gathered = tf.gather(x, tf.clip_by_value(idx, 0, size - 1), axis=axis, batch_dims=1)
        shape = [-1, 1, 1, 1]
        shape[axis] = size
        return gathered * tf.reshape(valid, shape)

    def _translation(self, x, u_x, u_y):
        height, width = x.shape[1], x.shape[2]
        max_h = int(height * self.translation_ratio + 0.5)
        max_w = int(width * self.translation_ratio + 0.5)
        # Integers uniform in [-max, max].
        shift_h = tf.cast(tf.floor(tf.cast(u_x, tf.float32) * (2 * max_h + 1)), tf.int32) - max_h
        shift_w = tf.cast(tf.floor(tf.cast(u_y, tf.float32) * (2 * max_w + 1)), tf.int32) - max_w
        shift_h = tf.minimum(shift_h, max_h)
        shift_w = tf.minimum(shift_w, max_w)
        x = self._shift_axis(x, shift_h, 1, height)
        return self._shift_axis(x, shift_w, 2, width)

    def _cutout(self, x, u_x, u_y):
        height, width = x.shape[1], x.shape[2]
        cut_h = int(height * self.cutout_ratio + 0.5)
        cut_w = int(width * self.cutout_ratio + 0.5)
        # Centres as in the reference implementation: [0, size + (1 - cut % 2)).
        range_h, range_w = height + (1 - cut_h % 2), width + (1 - cut_w % 2)
        c_h = tf.minimum(tf.cast(tf.floor(tf.cast(u_x, tf.float32) * range_h), tf.int32),
                         range_h - 1)
        c_w = tf.minimum(tf.cast(tf.floor(tf.cast(u_y, tf.float32) * range_w), tf.int32),
                         range_w - 1)
        top, left = c_h - cut_h // 2, c_w - cut_w // 2
        rows = tf.range(height)[None, :]
        cols = tf.range(width)[None, :]
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + cut_h)
        in_cols = (cols >= left[:, None]) & (cols < left[:, None] + cut_w)
        hole = in_rows[:, :, None] & in_cols[:, None, :]
        return x * tf.cast(~hole, x.dtype)[:, :, :, None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "policy": list(self.policy),
            "translation_ratio": self.translation_ratio,
            "cutout_ratio": self.cutout_ratio,
            "seed": self.seed,
        })
        return config

"""The GAN base class: two sub-models, two optimizers, one `train_step`."""

import copy

import keras
import numpy as np
import tensorflow as tf

from keras_aigc import losses as losses_lib
from keras_aigc.distribute import global_mean, replica_normal
from keras_aigc.layers.diff_augment import DiffAugment
from keras_aigc.losses import penalties
from keras_aigc.models.base import GenerativeModel, new_seed
from keras_aigc.models.gan import mlp

UPDATES = ("alternating", "simultaneous")


@keras.saving.register_keras_serializable(package="keras_aigc")
class GAN(GenerativeModel):
    """A generative adversarial network trained with `model.fit`.

    The generator maps latents `z ~ N(0, I)` to images; the discriminator maps images to
    logits. Each `train_step` updates the discriminator `d_steps` times, then the
    generator once. Losses are per example and averaged over the *global* batch, and each
    replica draws its own slice of one global batch of latents, so a step under
    `MirroredStrategy` equals the same step on one device.

    Args:
        generator: `keras.Model`. Maps `(B, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to logits `(B, ...)`.
        latent_dim: int. Size of the latent vector.
        loss: str. Adversarial loss family, see `keras_aigc.losses.GAN_LOSSES`.
            Defaults to `"non_saturating"`.
        d_steps: int. Discriminator updates per generator update. Defaults to `1`.
        value_range: tuple. `(low, high)` of generated pixels. Defaults to `(-1, 1)`.
        seed: int. Seed of the latent stream used in training; drawn at random when
            `None` and then stored in the config.
        penalty: str or None. Discriminator regularizer added to its per-example loss:
            `"gradient_penalty"` (WGAN-GP, on interpolates), `"one_sided_gradient_penalty"`
            or `"r1"` (on real data). Defaults to `None`.
        penalty_weight: float. The penalty's coefficient (lambda for the gradient
            penalty, gamma for R1). Defaults to `10.0`.
        ema_decay: float or None. When set, keeps an exponential moving average of the
            generator weights, `ema = decay * ema + (1 - decay) * w` after every generator
            update. Its batch-norm moving statistics are its own: the EMA generator runs
            forward in batch-statistics mode on each step's latents (one extra generator
            forward per step), so they describe the averaged weights; other non-trainable
            state is copied. `generate()`, `call()` and `inference_generator` then use it, and it is saved
            in `.keras` files. Defaults to `None`.
        diff_augment: str, list or None. DiffAugment policy (`"color"`, `"translation"`,
            `"cutout"`, or a comma-separated mix) applied to real and fake images before
            D during training only. Defaults to `None`.
        update: str. How one `train_step` updates the two networks.
            `"alternating"` (default) updates D `d_steps` times, then draws fresh latents
            and updates G against the updated D: 2 generator and 3 discriminator forward
            passes per step with `d_steps=1`. `"simultaneous"` is the TensorFlow DCGAN
            tutorial's step: one generator forward, D on the real and the fake batch, both
            losses from these passes, both gradients taken at the same parameters, then both
            optimizers applied (1 generator and 2 discriminator forward passes). It needs
            `d_steps=1`. A `penalty` costs the same under both: its D pass on the
            interpolates (or on the real batch for R1) with a double backward, on top of
            the passes above. DiffAugment draws once for the real and once for the fake
            batch per step.

    Example:

    ```python
    gan = keras_aigc.models.GAN(generator, discriminator, latent_dim=64)
    gan.compile()
    gan.fit(keras_aigc.data.load("digits"), epochs=1)
    ```

    Reference:
        Goodfellow et al., Generative Adversarial Nets, 2014.
    """

    def __init__(self, generator, discriminator, latent_dim, loss="non_saturating",
                 d_steps=1, value_range=(-1.0, 1.0), seed=None, penalty=None,
                 penalty_weight=10.0, ema_decay=None, diff_augment=None, update="alternating",
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(d_steps, bool) or not isinstance(d_steps, int) or d_steps < 1:
            raise ValueError(f"d_steps must be an integer >= 1, got d_steps={d_steps!r}.")
        if update not in UPDATES:
            raise ValueError(
                f"Unrecognized update={update!r}. Supported updates are: {list(UPDATES)}.")
        if update == "simultaneous" and d_steps != 1:
            raise ValueError(
                f"update='simultaneous' takes one discriminator and one generator update "
                f"from the same generator pass, so it needs d_steps=1; got d_steps={d_steps}. "
                "Use update='alternating' for several critic updates per generator update.")
        penalties.check_penalty(penalty, penalty_weight)
        if ema_decay is not None and (isinstance(ema_decay, bool)
                                      or not isinstance(ema_decay, (int, float))
                                      or not 0.0 <= ema_decay < 1.0):
            raise ValueError(
                f"ema_decay must be None or a number in [0, 1), got ema_decay={ema_decay!r}."
            )
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.loss_name = loss
        self.g_loss_fn, self.d_loss_fn = losses_lib.get_gan_loss(loss)
        self.d_steps = d_steps
        self.update = update
        self.value_range = tuple(float(v) for v in value_range)
        self.seed = new_seed() if seed is None else int(seed)
        self.penalty = penalty
        self.penalty_weight = float(penalty_weight)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.diff_augment = (None if diff_augment is None
                             else DiffAugment.parse_policy(diff_augment))
        self.augmenter = (None if self.diff_augment is None
                          else DiffAugment(self.diff_augment, seed=self.seed,
                                           name="diff_augment"))
        self.ema_generator = None
        if generator.built:
            self._make_ema_generator()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_accuracy = keras.metrics.Mean(name="d_real_accuracy")
        self.d_fake_accuracy = keras.metrics.Mean(name="d_fake_accuracy")
        self.d_penalty_tracker = keras.metrics.Mean(name="d_penalty")
        self.g_optimizer = None
        self.d_optimizer = None
        if generator.built and discriminator.built:
            self.built = True

    # ------------------------------------------------------------------ presets
    # `GAN.from_preset("mlp_mnist")`: the fully connected case study (see models/gan/mlp.py).
    presets = mlp.MLP_PRESETS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A preset names an architecture of one class: a subclass declares its own or none.
        if "presets" not in cls.__dict__:
            cls.presets = {}

    @classmethod
    def from_architecture_preset(cls, preset, **kwargs):
        """Builds a fully connected GAN from a named preset (`GAN.presets`).

        `GAN.from_preset("mlp_mnist")` lands here (see `PresetMixin.from_preset`).

        Args:
            preset: str. `"mlp_mnist"`: G 100-256-512-784 (ReLU, tanh), D 784-256-128-1.
            **kwargs: `image_shape`, `latent_dim`, `g_units`, `d_units` override the
                architecture; the rest (`loss`, `seed`, ...) go to `GAN`.

        Example:

        ```python
        gan = keras_aigc.models.GAN.from_preset("mlp_mnist", seed=0)
        gan.compile()  # Adam(2e-4, beta_1=0.5) for both networks
        ```
        """
        arch = dict(cls.presets[preset])
        if "g_units" not in arch:  # a subclass's presets are constructor arguments
            return super().from_architecture_preset(preset, **kwargs)
        for key in list(arch):
            if key in kwargs:
                arch[key] = kwargs.pop(key)
        generator = mlp.build_mlp_generator(arch["image_shape"], arch["latent_dim"],
                                            arch["g_units"])
        discriminator = mlp.build_mlp_discriminator(arch["image_shape"], arch["d_units"])
        return cls(generator=generator, discriminator=discriminator,
                   latent_dim=int(arch["latent_dim"]), **kwargs)

    # ----------------------------------------------------------------- building
    def build_networks(self):
        """Builds the generator (then its EMA copy) and the discriminator on the
        generator's output shape; networks already built are left as they are."""
        if not self.generator.built:
            self.generator.build(self.generator_input_shape())
        if self.ema_generator is None:
            self._make_ema_generator()
        if not self.discriminator.built:
            self.discriminator.build(
                self.generator.compute_output_shape(self.generator_input_shape()))

    def generator_input_shape(self):
        """Shape(s) the generator is built on: `(None, latent_dim)`."""
        return (None, self.latent_dim)

    @property
    def image_shape(self):
        return tuple(self.generator.output_shape[1:])

    def call(self, inputs, training=False):
        """Generates images from generator inputs (latents `(B, latent_dim)`).

        In inference (`training=False`) this is `inference_generator`, the EMA
        generator when `ema_decay` is set.
        """
        if training:
            return self.generator(inputs, training=True)
        return self.inference_generator(inputs, training=False)

    def _make_ema_generator(self):
        if self.ema_decay is None:
            return
        self.ema_generator = keras.models.clone_model(self.generator)
        self.ema_generator.set_weights(self.generator.get_weights())
        self.ema_generator.trainable = False

    # ---------------------------------------------------------------- compiling
    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Configures training.

        Args:
            g_optimizer: `keras.optimizers.Optimizer`, its config dict or name.
                Defaults to `Adam(2e-4, beta_1=0.5)`.
            d_optimizer: likewise for the discriminator.
            **kwargs: passed to `keras.Model.compile` (e.g. `jit_compile`,
                `steps_per_execution`).
        """
        if "optimizer" in kwargs or "loss" in kwargs:
            raise ValueError(
                "GAN.compile takes g_optimizer= and d_optimizer=, not optimizer= or loss=; "
                "choose the adversarial loss with the model's `loss` argument."
            )
        kwargs.setdefault("jit_compile", False)
        auto_scale_loss = kwargs.get("auto_scale_loss", True)
        super().compile(**kwargs)
        # keras.Model.compile defaults to an RMSprop over all weights that train_step never
        # uses; it would be built, saved and restored for nothing.
        self.optimizer = None
        with self.distribute_strategy.scope():
            self.g_optimizer = self._make_optimizer(g_optimizer, "g_optimizer")
            self.d_optimizer = self._make_optimizer(d_optimizer, "d_optimizer")
            # Keras only wraps `self.optimizer` for float16; both of ours need it.
            if auto_scale_loss and self.dtype_policy.name == "mixed_float16":
                self.g_optimizer = self._loss_scaled(self.g_optimizer, "g")
                self.d_optimizer = self._loss_scaled(self.d_optimizer, "d")
            if self.built:
                self.build_optimizers()

    @staticmethod
    def _loss_scaled(optimizer, prefix):
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(
            optimizer, name=f"{prefix}_loss_scale_optimizer")

    def default_optimizer(self, which):
        """The optimizer used when compile() gets none; subclasses change it."""
        del which
        return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)

    def _make_optimizer(self, spec, which):
        if spec is None:
            return self.default_optimizer(which)
        if isinstance(spec, keras.optimizers.Optimizer):
            return spec
        if isinstance(spec, (str, dict)):
            try:
                return keras.optimizers.get(spec)
            except (ValueError, TypeError) as e:
                raise ValueError(f"Could not build {which} from {spec!r}: {e}") from e
        raise ValueError(
            f"{which} must be a keras.optimizers.Optimizer, its config dict or name; "
            f"got {type(spec).__name__}."
        )

    def training_steps(self):
        """Training steps so far: the generator optimizer's updates (one per step)."""
        if self.g_optimizer is None:
            return None
        return int(keras.ops.convert_to_numpy(self.g_optimizer.iterations))

    def build_optimizers(self):
        """Creates both optimizers' variables inside the model's strategy scope."""
        if self.g_optimizer is None:
            return
        with self.distribute_strategy.scope():
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        if self.g_optimizer is None:
            return None
        return {
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
        }

    def compile_from_config(self, config):
        if not config:
            return
        self.compile(
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
        )

    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker, self.d_real_accuracy,
                    self.d_fake_accuracy]
        if self.penalty is not None:
            trackers.append(self.d_penalty_tracker)
        return trackers

    # ----------------------------------------------------------------- training
    def generator_inputs(self, z, labels):
        """What the generator is called on; conditional models add the labels."""
        del labels
        return z

    def discriminator_inputs(self, images, labels):
        del labels
        return images

    def sample_latents(self, local_batch, stream):
        """This replica's latents for draw number `stream` of the current step."""
        counter = self.g_optimizer.iterations * (self.d_steps + 1) + stream
        return replica_normal(self.seed, counter, local_batch, self.latent_dim,
                              dtype=self.compute_dtype)

    def discriminator_regularizer(self, real, fake, labels):
        """Extra per-example D loss (gradient penalties); `None` for none."""
        if self.penalty is None:
            return None

        def critic(images):
            return self.discriminator(self.discriminator_inputs(images, labels), training=True)

        if self.penalty == "r1":
            return losses_lib.r1_penalty(critic, real, weight=self.penalty_weight)
        # One interpolation weight per example, replica-exact like the latents; negative
        # counters keep this stream disjoint from the latent draws.
        counter = -1 - tf.cast(self.d_optimizer.iterations, tf.int64)
        z = replica_normal(self.seed, counter, tf.shape(real)[0], 1)
        alpha = 0.5 * (1.0 + tf.math.erf(z[:, 0] / np.sqrt(2.0)))
        return losses_lib.gradient_penalty(
            critic, real, fake, alpha, weight=self.penalty_weight,
            one_sided=self.penalty == "one_sided_gradient_penalty")

    def augment(self, images):
        """Differentiable augmentation applied to real and fake images before D."""
        if self.augmenter is None:
            return images
        return self.augmenter(images, training=True)

    def train_step(self, data):
        if self.update == "simultaneous":
            return self.simultaneous_train_step(data)
        real, labels = self.unpack_batch(data)
        local_batch = tf.shape(real)[0]
        for step in range(self.d_steps):
            z = self.sample_latents(local_batch, step)
            with tf.GradientTape() as tape:
                fake = self.generator(self.generator_inputs(z, labels), training=True)
                real_logits = self.discriminator(
                    self.discriminator_inputs(self.augment(real), labels), training=True)
                fake_logits = self.discriminator(
                    self.discriminator_inputs(self.augment(fake), labels), training=True)
                d_per_example = self.d_loss_fn(real_logits, fake_logits)
                reg = self.discriminator_regularizer(real, fake, labels)
                if reg is not None:
                    d_per_example = d_per_example + reg
                d_loss = global_mean(d_per_example)
                scaled_d_loss = self.d_optimizer.scale_loss(d_loss)
            d_vars = self.discriminator.trainable_variables
            grads = tape.gradient(scaled_d_loss, d_vars)
            self.d_optimizer.apply_gradients(zip(grads, d_vars, strict=True))

        z = self.sample_latents(local_batch, self.d_steps)
        with tf.GradientTape() as tape:
            fake = self.generator(self.generator_inputs(z, labels), training=True)
            fake_logits_g = self.discriminator(
                self.discriminator_inputs(self.augment(fake), labels), training=True)
            g_per_example = self.g_loss_fn(fake_logits_g)
            g_loss = global_mean(g_per_example)
            scaled_g_loss = self.g_optimizer.scale_loss(g_loss)
        g_vars = self.generator.trainable_variables
        grads = tape.gradient(scaled_g_loss, g_vars)
        self.g_optimizer.apply_gradients(zip(grads, g_vars, strict=True))
        self.after_generator_update(self.generator_inputs(z, labels))

        self._update_trackers(d_per_example, g_per_example, real_logits, fake_logits)
        if reg is not None:
            self.d_penalty_tracker.update_state(reg)
        return self.step_logs({m.name: m.result() for m in self.metrics})

    def simultaneous_train_step(self, data):
        """One step of both players from the same forward passes (the TF DCGAN tutorial).

        One generator forward, D on the real and the fake batch, both losses from these
        logits, both gradients at the current parameters, then G's and D's optimizers.
        """
        real, labels = self.unpack_batch(data)
        z = self.sample_latents(tf.shape(real)[0], 0)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(self.generator_inputs(z, labels), training=True)
            real_logits = self.discriminator(
                self.discriminator_inputs(self.augment(real), labels), training=True)
            fake_logits = self.discriminator(
                self.discriminator_inputs(self.augment(fake), labels), training=True)
            d_per_example = self.d_loss_fn(real_logits, fake_logits)
            g_per_example = self.g_loss_fn(fake_logits)
            reg = self.discriminator_regularizer(real, fake, labels)
            if reg is not None:
                d_per_example = d_per_example + reg
            scaled_d_loss = self.d_optimizer.scale_loss(global_mean(d_per_example))
            scaled_g_loss = self.g_optimizer.scale_loss(global_mean(g_per_example))
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = g_tape.gradient(scaled_g_loss, g_vars)
        d_grads = d_tape.gradient(scaled_d_loss, d_vars)
        self.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
        self.after_generator_update(self.generator_inputs(z, labels))

        self._update_trackers(d_per_example, g_per_example, real_logits, fake_logits)
        if reg is not None:
            self.d_penalty_tracker.update_state(reg)
        return self.step_logs({m.name: m.result() for m in self.metrics})

    def after_generator_update(self, generator_inputs=None):
        """Hook run after each generator update: the EMA of its weights when on.

        Trainable weights are averaged. Batch-norm moving statistics are not copied from
        the live generator: they describe the live weights' activations, not the averaged
        weights', and that mismatch measured FID 65 against 45 with statistics of the EMA
        weights themselves (DCGAN, MNIST, epoch 4, 1k samples; BigGAN's "standing
        statistics" fix the same thing after training). Instead the EMA generator runs
        forward in batch-statistics mode on this step's generator inputs, so that its own
        moving statistics track the averaged weights (one extra generator forward pass
        per step, no gradient). Other non-trainable weights are copied.
        """
        if self.ema_generator is None:
            return
        decay = self.ema_decay
        bn_stats = self._ema_batchnorm_layers() if generator_inputs is not None else []
        own = {id(v) for layer in bn_stats for v in layer.non_trainable_weights}
        # clone_model keeps the weight order; the EMA copy itself is frozen.
        for ema_w, w in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            if w.trainable:
                ema_w.assign(decay * ema_w + (1.0 - decay) * tf.cast(w, ema_w.dtype))
            elif id(ema_w) not in own:
                ema_w.assign(w)
        if bn_stats:
            # Keras runs a frozen BatchNormalization in inference mode whatever `training`
            # says, so the layers are unfrozen for this (traced, gradient-free) call only.
            for layer in bn_stats:
                layer.trainable = True
            try:
                self.ema_generator(tf.nest.map_structure(tf.stop_gradient, generator_inputs),
                                   training=True)
            finally:
                for layer in bn_stats:
                    layer.trainable = False

    def _ema_batchnorm_layers(self):
        return [layer for layer in self.ema_generator._flatten_layers(include_self=False)
                if isinstance(layer, keras.layers.BatchNormalization)]

    def _update_trackers(self, d_per_example, g_per_example, real_logits, fake_logits):
        def flat(logits):
            return tf.reshape(tf.cast(logits, tf.float32), [tf.shape(logits)[0], -1])

        self.d_loss_tracker.update_state(d_per_example)
        self.g_loss_tracker.update_state(g_per_example)
        self.d_real_accuracy.update_state(tf.cast(flat(real_logits) > 0, tf.float32))
        self.d_fake_accuracy.update_state(tf.cast(flat(fake_logits) < 0, tf.float32))

    def test_step(self, data):
        real, labels = self.unpack_batch(data)
        z = self.sample_latents(tf.shape(real)[0], self.d_steps + 1)
        fake = self.generator(self.generator_inputs(z, labels), training=False)
        real_logits = self.discriminator(self.discriminator_inputs(real, labels), training=False)
        fake_logits = self.discriminator(self.discriminator_inputs(fake, labels), training=False)
        self._update_trackers(self.d_loss_fn(real_logits, fake_logits),
                              self.g_loss_fn(fake_logits), real_logits, fake_logits)
        # The penalty needs input gradients; evaluation reports the adversarial terms.
        return self.step_logs(
            {m.name: m.result() for m in self.metrics if m is not self.d_penalty_tracker})

    # --------------------------------------------------------------- generating
    @property
    def inference_generator(self):
        """The generator used by `generate()` and by export (EMA weights when on)."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def decode_latents(self, z, labels):
        """Images from the inference generator for one batch of latents (and labels)."""
        return self.inference_generator(self.generator_inputs(z, labels), training=False)

    # ------------------------------------------------------------------ export
    @property
    def family(self):
        return "gan" if self.num_classes is None else "conditional_gan"

    def export_signatures(self):
        """`generate`: `z` [, int32 `labels`] -> `image`, through `inference_generator`."""
        gen = self.inference_generator

        def generate(z, *labels):
            z = keras.ops.convert_to_tensor(z, "float32")
            labels = (keras.ops.convert_to_tensor(labels[0], "int32") if labels else None)
            return {"image": gen(self.generator_inputs(z, labels), training=False)}

        return [self.image_signature("generate", generate)]

    def export_tracked(self):
        return [self.inference_generator]

    @property
    def exports_ema_weights(self):
        return self.ema_generator is not None

    # ------------------------------------------------------------ serialization
    # Subclasses that build their networks from constructor arguments (DCGAN, WGANGP, ...)
    # name those arguments here: the config then stores them instead of the networks.
    architecture_args = ()
    # The GAN arguments every subclass shares.
    training_args = ("latent_dim", "loss", "d_steps", "value_range", "seed", "penalty",
                     "penalty_weight", "ema_decay", "diff_augment", "update")

    @property
    def config_args(self):
        return (self.architecture_args or ("generator", "discriminator")) + self.training_args

    @classmethod
    def takes_image_shape(cls):
        """Subclasses that build their networks declare `image_shape` among their
        `architecture_args`; a `GAN` of given networks takes none."""
        return "image_shape" in cls.architecture_args

    def config_value(self, name):
        if name in ("generator", "discriminator"):
            return keras.layers.serialize(getattr(self, name))
        if name == "loss":
            return self.loss_name
        if name == "diff_augment":
            return None if self.diff_augment is None else list(self.diff_augment)
        return super().config_value(name)

    @classmethod
    def from_config(cls, config):
        # deserialize() pops keys out of nested configs: work on a copy, not the caller's.
        config = copy.deepcopy(config)
        if not cls.architecture_args:
            config["generator"] = keras.layers.deserialize(config["generator"])
            config["discriminator"] = keras.layers.deserialize(config["discriminator"])
        return cls(**config)

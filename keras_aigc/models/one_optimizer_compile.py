"""`OneOptimizerCompile`: `compile` for models trained by one optimizer on a fixed objective."""

import keras

# compile() arguments a model with its own objective refuses.
_FIXED_BY_THE_MODEL = ("loss", "metrics", "weighted_metrics", "loss_weights")


class OneOptimizerCompile:
    """Mixed into `keras.Model` subclasses (before it) whose `train_step` minimises an
    objective of their own with a single optimizer: VAEs, the PixelCNN, reward fine-tuning.
    GANs, with their two optimizers, have their own `compile`.

    `compile(optimizer=None, **kwargs)` takes an optimizer (instance, config dict or name;
    `default_optimizer()` when `None`), refuses `loss=`/`metrics=` naming the objective,
    builds the optimizer's variables under the model's strategy (so that a backup can be
    restored into them before the first step) and implements `get_compile_config` /
    `compile_from_config` so that a `.keras` file keeps the optimizer, schedule included.

    Attributes:
        compile_objective: str. What the model minimises, for error messages.
        default_learning_rate: float. Adam's learning rate when no optimizer is given.
    """

    compile_objective = "fixed by the model"
    default_learning_rate = 1e-3

    def default_optimizer(self):
        """The optimizer `compile()` uses when none is given: `Adam(default_learning_rate)`."""
        return keras.optimizers.Adam(learning_rate=self.default_learning_rate)

    def optimizer_variables(self):
        """The variables the optimizer updates (its slots are built for these)."""
        return self.trainable_variables

    def compile(self, optimizer=None, **kwargs):
        """Configures training.

        Args:
            optimizer: `keras.optimizers.Optimizer`, its config dict or name. Defaults to
                `default_optimizer()` (Adam).
            **kwargs: passed to `keras.Model.compile` (e.g. `steps_per_execution`);
                `loss` and `metrics` are fixed by the model.

        Raises:
            ValueError: `loss`, `metrics`, `weighted_metrics` or `loss_weights` given, or
                an optimizer Keras cannot build.
        """
        for key in _FIXED_BY_THE_MODEL:
            if kwargs.get(key) is not None:
                raise ValueError(f"{type(self).__name__}.compile takes no {key}=; the "
                                 f"objective is {self.compile_objective}.")
            kwargs.pop(key, None)
        kwargs.setdefault("jit_compile", False)
        with self.distribute_strategy.scope():
            if optimizer is None:
                optimizer = self.default_optimizer()
            elif not isinstance(optimizer, keras.optimizers.Optimizer):
                try:
                    optimizer = keras.optimizers.get(optimizer)
                except (ValueError, TypeError) as e:
                    raise ValueError(f"Could not build optimizer from {optimizer!r}: {e}") from e
            super().compile(optimizer=optimizer, **kwargs)
            self.optimizer.build(self.optimizer_variables())

    def get_compile_config(self):
        if getattr(self, "optimizer", None) is None:
            return None
        return {"optimizer": keras.optimizers.serialize(self.optimizer)}

    def compile_from_config(self, config):
        if config:
            self.compile(optimizer=keras.optimizers.deserialize(config["optimizer"]))

    def minimize_global_mean(self, objective):
        """One optimizer step on the mean over the global batch of per-example losses.

        `objective()` runs the forward pass and returns `(per_example_loss (B,), aux)`; it
        is called under the gradient tape. The mean is over every replica's examples
        (`global_mean`), so 2 replicas take the step 1 replica takes on the same global
        batch; the loss goes through `optimizer.scale_loss` (identity unless compile()
        wrapped the optimizer for mixed_float16). Returns `aux`.
        """
        import tensorflow as tf

        from keras_aigc.distribute import global_mean

        with tf.GradientTape() as tape:
            per_example, aux = objective()
            scaled = self.optimizer.scale_loss(global_mean(per_example))
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return aux

"""KLWarmup: ramp a VAE's KL weight linearly from `start` to its `beta`."""

import keras


@keras.saving.register_keras_serializable(package="keras_aigc")
class KLWarmup(keras.callbacks.Callback):
    """Linear KL warm-up (deterministic annealing) for VAEs.

    Before each training batch, sets the model's `kl_weight` variable to
    `start + (beta - start) * min(1, step / warmup_steps)`, where `step` is the
    optimizer's iteration count (so a resumed run continues the ramp) and `beta` the
    model's configured KL weight. Early in training the decoder then learns to use `z`
    before the KL term pulls the posterior to the prior, which avoids inactive latents.

    Args:
        warmup_steps: int. Steps to reach `beta`.
        start: float. KL weight at step 0. Defaults to `0.0`.

    Example:

    ```python
    vae.fit(ds, epochs=10, callbacks=[keras_aigc.callbacks.KLWarmup(warmup_steps=2000)])
    ```

    Reference:
        Bowman et al., Generating Sentences from a Continuous Space, 2016;
        Sønderby et al., Ladder Variational Autoencoders, 2016.
    """

    def __init__(self, warmup_steps, start=0.0):
        super().__init__()
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 1:
            raise ValueError(f"warmup_steps must be a positive integer, got "
                             f"warmup_steps={warmup_steps!r}.")
        if not float(start) >= 0:
            raise ValueError(f"start must be >= 0, got start={start!r}.")
        self.warmup_steps = warmup_steps
        self.start = float(start)

    def weight_at(self, step):
        """The KL weight used at optimizer step `step`."""
        frac = min(1.0, float(step) / self.warmup_steps)
        return self.start + (float(self.model.beta) - self.start) * frac

    def on_train_begin(self, logs=None):
        from keras_aigc.models.vae.vae import VAE

        if not isinstance(self.model, VAE):
            raise ValueError(f"KLWarmup needs a VAE (a model with `kl_weight` and `beta`), "
                             f"got {type(self.model).__name__}.")

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.kl_weight.assign(self.weight_at(step))

    def on_train_end(self, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.kl_weight.assign(self.weight_at(step))

    def get_config(self):
        return {"warmup_steps": self.warmup_steps, "start": self.start}

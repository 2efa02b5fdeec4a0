"""Name -> (generator loss, discriminator loss) registry for GAN loss families."""

from keras_aigc.losses import adversarial

GAN_LOSSES = {}


def register_gan_loss(name, generator_loss, discriminator_loss):
    """Registers a loss family under `name` (overwriting is an error)."""
    if name in GAN_LOSSES:
        raise ValueError(f"A GAN loss named {name!r} is already registered.")
    GAN_LOSSES[name] = (generator_loss, discriminator_loss)


def get_gan_loss(name):
    """Returns `(generator_loss, discriminator_loss)` for a registered family name."""
    if not isinstance(name, str) or name not in GAN_LOSSES:
        raise ValueError(
            f"Unrecognized GAN loss={name!r}. Supported losses are: {sorted(GAN_LOSSES)}."
        )
    return GAN_LOSSES[name]


for _family in ("minimax", "non_saturating", "least_squares", "wasserstein", "hinge"):
    register_gan_loss(
        _family,
        getattr(adversarial, f"{_family}_generator_loss"),
        getattr(adversarial, f"{_family}_discriminator_loss"),
    )

"""Known values of every adversarial loss family (TF-GAN's loss-test mixin pattern).

Probabilistic families use logits +-ln 3 and 0, i.e. D = 0.75, 0.25 and 0.5, so every
expected value is an exact expression in log 2 and log 3.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import losses

LN2, LN3 = math.log(2.0), math.log(3.0)


class _LossFamilyMixin:
    family = None
    real = None
    fake = None
    expected_g = None  # per example
    expected_d = None

    def fns(self):
        return losses.get_gan_loss(self.family)

    def test_named_functions_are_the_registered_ones(self):
        g, d = self.fns()
        assert g is getattr(losses, f"{self.family}_generator_loss")
        assert d is getattr(losses, f"{self.family}_discriminator_loss")

    def test_per_example_known_values(self):
        g, d = self.fns()
        real = tf.constant(self.real, tf.float32)[:, None]
        fake = tf.constant(self.fake, tf.float32)[:, None]
        np.testing.assert_allclose(g(fake).numpy(), self.expected_g, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(d(real, fake).numpy(), self.expected_d, rtol=1e-6,
                                   atol=1e-6)
        assert g(fake).shape == (len(self.fake),)

    def test_patch_logits_average_over_the_patch(self):
        # Example i gets a 3x3 patch whose mean is its logit: per-example value of the
        # patch is the mean of the loss over the patch, which for constant patches equals
        # the 1-logit value.
        g, d = self.fns()
        real = np.tile(np.asarray(self.real, np.float32)[:, None, None, None], (1, 3, 3, 1))
        fake = np.tile(np.asarray(self.fake, np.float32)[:, None, None, None], (1, 3, 3, 1))
        np.testing.assert_allclose(g(fake).numpy(), self.expected_g, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(d(real, fake).numpy(), self.expected_d, rtol=1e-6,
                                   atol=1e-6)
        # A non-constant patch: loss of the patch is the mean of per-pixel losses.
        mixed = np.stack([fake[0], fake[1]], axis=0).copy()
        mixed[0, 0, 0, 0] = self.fake[1]
        per_pixel = [g(tf.constant([[v]], tf.float32)).numpy()[0]
                     for v in mixed[0].ravel()]
        np.testing.assert_allclose(g(mixed).numpy()[0], np.mean(per_pixel), rtol=1e-6)

    def test_low_precision_logits_give_float32(self):
        g, d = self.fns()
        fake = tf.constant(self.fake, tf.bfloat16)[:, None]
        real = tf.constant(self.real, tf.bfloat16)[:, None]
        assert g(fake).dtype == tf.float32
        assert d(real, fake).dtype == tf.float32


class TestMinimax(_LossFamilyMixin):
    family = "minimax"
    real = [LN3, 0.0]
    fake = [-LN3, 0.0]
    expected_g = [math.log(0.75), math.log(0.5)]           # log(1 - D(G(z)))
    expected_d = [2 * math.log(4 / 3), 2 * LN2]            # -log D(x) - log(1 - D(G(z)))


class TestNonSaturating(_LossFamilyMixin):
    family = "non_saturating"
    real = [LN3, 0.0]
    fake = [-LN3, 0.0]
    expected_g = [2 * LN2, LN2]                            # -log 0.25, -log 0.5
    expected_d = [2 * math.log(4 / 3), 2 * LN2]


class TestLeastSquares(_LossFamilyMixin):
    family = "least_squares"
    real = [2.0, -0.5]
    fake = [-3.0, 0.5]
    expected_g = [8.0, 0.125]                              # (f - 1)^2 / 2
    expected_d = [0.5 + 4.5, 1.125 + 0.125]                # (r - 1)^2 / 2 + f^2 / 2


class TestWasserstein(_LossFamilyMixin):
    family = "wasserstein"
    real = [2.0, -0.5]
    fake = [-3.0, 0.5]
    expected_g = [3.0, -0.5]
    expected_d = [-5.0, 1.0]


class TestHinge(_LossFamilyMixin):
    family = "hinge"
    real = [2.0, -0.5]
    fake = [-3.0, 0.5]
    expected_g = [3.0, -0.5]
    expected_d = [0.0, 3.0]                                # relu(1 - r) + relu(1 + f)


def test_registry_lists_all_families():
    assert set(losses.GAN_LOSSES) >= {"minimax", "non_saturating", "least_squares",
                                      "wasserstein", "hinge"}


@pytest.mark.parametrize("name", ["wgan", "", None, ["hinge"]])
def test_unknown_loss_name_lists_known_names(name):
    with pytest.raises(ValueError, match=r"loss=.*Supported losses are: \[.*'hinge'.*\]"):
        losses.get_gan_loss(name)


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError, match="already registered"):
        losses.register_gan_loss("hinge", losses.hinge_generator_loss,
                                 losses.hinge_discriminator_loss)

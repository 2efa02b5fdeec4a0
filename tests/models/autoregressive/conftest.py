"""Seeds Keras' global random state before every PixelCNN test.

The tiny models here are built with Keras' default (unseeded) initializers, and some tests
check statistical properties of a trained model (a chi-square test of its samples at
p > 0.01, a probability above a threshold after 30 steps). With fresh weights each run those
checks fail a fixed fraction of the time; with a seeded initialisation every run sees the
same weights, so a test passes or fails for a reason.
"""

import keras
import pytest


@pytest.fixture(autouse=True)
def seeded_keras():
    keras.utils.set_random_seed(20240)
    yield

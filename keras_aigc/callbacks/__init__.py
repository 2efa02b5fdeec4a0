"""Training callbacks: sample grids (chief only), Frechet distance during fit."""

from keras_aigc.callbacks.frechet_distance_callback import FrechetDistanceCallback
from keras_aigc.callbacks.sample_grid import SampleGrid

__all__ = ["FrechetDistanceCallback", "SampleGrid"]

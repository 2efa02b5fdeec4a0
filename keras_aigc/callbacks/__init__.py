"""Training callbacks: sample grids (chief only)."""

from keras_aigc.callbacks.sample_grid import SampleGrid

__all__ = ["SampleGrid"]

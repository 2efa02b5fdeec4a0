"""Training callbacks: sample grids (chief only), KL warm-up."""

from keras_aigc.callbacks.kl_warmup import KLWarmup
from keras_aigc.callbacks.sample_grid import SampleGrid

__all__ = ["KLWarmup", "SampleGrid"]

"""Building blocks shared by the models."""

from keras_aigc.layers.conditional_batch_norm import ConditionalBatchNorm
from keras_aigc.layers.diff_augment import DiffAugment
from keras_aigc.layers.label_onehot import LabelOneHot
from keras_aigc.layers.spectral_norm import SpectralNormalization

__all__ = ["ConditionalBatchNorm", "DiffAugment", "LabelOneHot", "SpectralNormalization"]

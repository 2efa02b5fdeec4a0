"""Sample-quality metrics: Frechet distance (FID), KID, Inception Score, precision/recall.

Every metric takes feature arrays; `keras_aigc.metrics.features` turns images into features
(InceptionV3, or a classifier trained on the domain).
"""

from keras_aigc.metrics import features
from keras_aigc.metrics.feature_statistics import FeatureStatistics
from keras_aigc.metrics.frechet_distance import (
    FrechetDistance,
    frechet_distance,
    frechet_distance_from_features,
    frechet_distance_tf,
)
from keras_aigc.metrics.inception_score import inception_score
from keras_aigc.metrics.kernel_inception_distance import kernel_inception_distance
from keras_aigc.metrics.precision_recall import precision_recall

__all__ = [
    "FeatureStatistics", "FrechetDistance", "features", "frechet_distance",
    "frechet_distance_from_features", "frechet_distance_tf", "inception_score",
    "kernel_inception_distance", "precision_recall",
]

"""Pluggable feature extractors for the metrics: InceptionV3, or a classifier of the domain.

An extractor is called as `extractor(images, value_range=(low, high))` and returns float32
`(N, extractor.dim)` features.
"""

from keras_aigc.metrics.features.domain_classifier import DomainClassifier
from keras_aigc.metrics.features.domain_features import (
    DomainFeatures,
    default_directory,
    train_domain_classifier,
)
from keras_aigc.metrics.features.inception_features import InceptionFeatures

EXTRACTORS = ("domain", "inception")

__all__ = ["DomainClassifier", "DomainFeatures", "InceptionFeatures", "EXTRACTORS",
           "default_directory", "train_domain_classifier"]

"""Pluggable feature extractors for the metrics: the standard FID Inception network,
Keras' InceptionV3, or a classifier of the domain.

An extractor is called as `extractor(images, value_range=(low, high))` and returns float32
`(N, extractor.dim)` features.
"""

from keras_aigc.metrics.features.domain_classifier import DomainClassifier
from keras_aigc.metrics.features.domain_features import (
    DomainFeatures,
    default_directory,
    train_domain_classifier,
)
from keras_aigc.metrics.features.fid_inception import FIDInception
from keras_aigc.metrics.features.fid_inception import weights_available as fid_weights_available
from keras_aigc.metrics.features.inception_features import InceptionFeatures
from keras_aigc.metrics.features.reference_cache import reference_features

EXTRACTORS = ("fid", "domain", "inception")

__all__ = ["DomainClassifier", "DomainFeatures", "FIDInception", "InceptionFeatures",
           "EXTRACTORS", "fid_weights_available", "reference_features",
           "default_directory", "train_domain_classifier"]

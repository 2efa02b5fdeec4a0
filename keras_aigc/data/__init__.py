"""Data sources and preprocessing: `load("digits" | "npz:PATH" | "tfds:NAME" | "dir:PATH")`."""

from keras_aigc.data.loader import SCALINGS, SPLITS, DatasetInfo, info, load, load_arrays
from keras_aigc.data.sources import DIGITS_SIZE, SOURCES, parse_spec

__all__ = ["DatasetInfo", "load", "load_arrays", "info", "parse_spec", "SOURCES", "SCALINGS",
           "SPLITS", "DIGITS_SIZE"]

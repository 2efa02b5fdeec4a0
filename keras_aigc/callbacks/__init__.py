"""Training callbacks: sample grids and step-exact backup (chief-aware)."""

from keras_aigc.callbacks.backup_and_restore import BackupAndRestore
from keras_aigc.callbacks.sample_grid import SampleGrid

__all__ = ["BackupAndRestore", "SampleGrid"]

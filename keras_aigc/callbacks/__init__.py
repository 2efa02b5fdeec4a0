"""Training callbacks: sample grids (chief only), step-exact backup (chief-aware), KL warm-up,
Frechet distance during fit."""

from keras_aigc.callbacks.backup_and_restore import BackupAndRestore, CorruptBackupError
from keras_aigc.callbacks.frechet_distance_callback import FrechetDistanceCallback
from keras_aigc.callbacks.hparams_logger import HParamsLogger
from keras_aigc.callbacks.kl_warmup import KLWarmup
from keras_aigc.callbacks.sample_grid import SampleGrid
from keras_aigc.callbacks.streaming_backup_and_restore import StreamingBackupAndRestore

__all__ = ["BackupAndRestore", "CorruptBackupError", "FrechetDistanceCallback", "HParamsLogger",
           "KLWarmup", "SampleGrid", "StreamingBackupAndRestore"]
